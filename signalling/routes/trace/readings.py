"""Devices stream readings into a batch; anyone reads the batch's series.

A device token for a batch carries the ``bat`` claim: it posts readings to
that batch only (and to no room). Readings of a pinned batch are also
pushed live, at most once a second per batch and room, into the rooms it is
pinned in, as ``sensor`` events with names, units and excursion flags.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.trace import series
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json
from signalling.routes import sensors
from signalling.routes.trace.batches import batch_id, owner_check
from signalling.routes.trace.service import service

log = logging.getLogger("livecore.trace")
#: A post of 500 readings is ~25 KiB of JSON.
MAX_READINGS_BODY = 64 * 1024


async def device_token(request: Request) -> Response:
    """``POST /api/batches/{batch}/device-token`` (brand): a token for this batch's readings.

    Body (optional): ``{"device": "truck-7-logger", "ttl_s": 86400}``.
    """
    limit_writes(request)
    batch, svc = batch_id(request), service(request)
    await owner_check(request, svc, batch)
    minted = await sensors.device_token(request, room=batch, batch=batch)
    return JSONResponse({**minted, "batch": batch}, status_code=201)


async def post_readings(request: Request) -> Response:
    """``POST /api/batches/{batch}/readings`` (device token of this batch): 202 ``{accepted}``."""
    batch = batch_id(request)
    claims = await authorize(request, room=None, roles=frozenset({tokens.Role.DEVICE}))
    if claims.batch != batch:
        where = f"batch {claims.batch!r}" if claims.batch else "a room"
        raise LivecoreError(ErrorCode.TOKEN_WRONG_BATCH, f"token is for {where}, not {batch!r}")
    svc, node = service(request), ctx(request)
    who = f"{batch}/{claims.user}"
    if not svc.posts.allow(who):
        raise LivecoreError(ErrorCode.RATE_LIMITED, "at most 5 posts per second per device")
    body = await read_json(request, MAX_READINGS_BODY)
    first = await svc.first_record(batch)
    bands = first["data"].get("thresholds", {})
    now = node.clock.time()
    readings = series.parse_readings(
        body, device=claims.user, now=now, thresholds=bands, not_before=first["at"] - 86400
    )
    if not svc.budget.allow(who, cost=len(readings)):
        raise LivecoreError(
            ErrorCode.RATE_LIMITED, "at most 200 readings per second per device (bursts of 5,000)"
        )
    rooms = await svc.sensors.ingest(batch, readings, now=int(now))
    excursions = sum(r.excursion for r in readings)
    for room in rooms:
        if svc.pushes.allow(f"{batch}>{room}"):
            event = svc.sensor_event(batch, claims.user, readings, bands)
            await ctx(request).stores.bus.emit(room, event)
    return JSONResponse({"accepted": len(readings), "excursions": excursions}, status_code=202)


async def get_series(request: Request) -> Response:
    """``GET /api/batches/{batch}/series[?points=N]``: every series of the batch."""
    batch, svc = batch_id(request), service(request)
    raw = request.query_params.get("points", str(series.MAX_POINTS))
    if not raw.isdigit() or not 10 <= int(raw) <= series.MAX_POINTS:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"points: 10..{series.MAX_POINTS}")
    await svc.first_record(batch)
    return JSONResponse({"batch": batch, "series": await svc.charts(batch, int(raw))})
