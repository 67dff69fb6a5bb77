"""Devices in the field post readings that appear live in the room."""

from __future__ import annotations

import secrets
from typing import Any

import msgpack
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.sensors import parse_readings
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json

DEVICE_TTL_S = 30 * 24 * 3600


async def ingest_token(request: Request) -> Response:
    """``POST /api/rooms/{room}/ingest-token`` (host): a device token for this room.

    Body (optional): ``{"device": "soil-probe-1", "ttl_s": 86400}``.
    """
    limit_writes(request)
    room = request.path_params["room"]
    await authorize(request, room=room, roles=frozenset({tokens.Role.HOST}))
    return JSONResponse(await device_token(request, room=room), status_code=201)


async def device_token(request: Request, *, room: str, batch: str | None = None) -> dict[str, Any]:
    """Mint a device token for ``room`` (or for ``batch``, its ``bat`` claim), the caller
    being authorized: ``{"token", "device", "ttl_s"}``.

    The body is optional, ``{"device"?, "ttl_s"?}``: a device name (default
    ``device-<6 hex>``) and a lifetime of 60 s to 30 days (the default). The one
    minting of device tokens, for room sensors and for batch readings
    (:mod:`signalling.routes.trace.readings`).
    """
    body = await read_json(request) if request.headers.get("content-length", "0") != "0" else {}
    if not isinstance(body, dict) or not set(body) <= {"device", "ttl_s"}:
        raise LivecoreError(ErrorCode.BAD_REQUEST, 'body must be {"device"?, "ttl_s"?}')
    device = body.get("device") or f"device-{secrets.token_hex(3)}"
    ttl = body.get("ttl_s", DEVICE_TTL_S)
    if not isinstance(device, str) or not tokens.valid_id(device):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "device: 1-64 of A-Z a-z 0-9 _ . : -")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= DEVICE_TTL_S:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"ttl_s: 60..{DEVICE_TTL_S}")
    node = ctx(request)
    token = tokens.mint(
        node.ring, role=tokens.Role.DEVICE, room=room, user=device, ttl_s=ttl,
        now=node.clock.time(), batch=batch,
    )  # fmt: skip
    return {"token": token, "device": device, "ttl_s": ttl}


async def post_readings(request: Request) -> Response:
    """``POST /api/rooms/{room}/sensors`` (device token): readings become a ``sensor`` event."""
    room = request.path_params["room"]
    claims = await authorize(request, room=room, roles=frozenset({tokens.Role.DEVICE}))
    node = ctx(request)
    if not node.device_posts.allow(f"{room}:{claims.user}"):
        raise LivecoreError(ErrorCode.RATE_LIMITED, "at most 2 posts per second per device")
    readings = parse_readings(await read_json(request), now=node.clock.time())
    if await node.rooms.get(room) is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    event = {"t": "sensor", "device": claims.user, "readings": readings}
    emitted = await ctx(request).stores.bus.emit(room, msgpack.packb(event))
    return JSONResponse({"o": emitted.offset}, status_code=202)
