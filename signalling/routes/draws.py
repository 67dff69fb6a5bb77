"""Lucky draws over HTTP: anyone reads a draw, and once drawn, everything needed to
verify it (the commitment, the revealed seed, the sorted entrant list, the winners).

Opening, entering and drawing are room-channel messages
(:mod:`signalling.hub.handlers.draw`); docs/protocol.md, "Lucky draws", has the
rule and a recipe that re-derives the winners.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.lru import LruDict
from livecore.luckydraw import DrawStatus
from signalling.node.http_boundary import ctx

#: Drawn draws' answers a node keeps (a drawn draw never changes; its entrant list
#: may be 50,000 ids, so a public endpoint must not read it from the store each time).
MAX_CACHED_DRAWS = 16


def _drawn_cache(request: Request) -> LruDict[tuple[str, str], bytes]:
    cache = getattr(request.app.state, "drawn_draws", None)
    if not isinstance(cache, LruDict):
        cache = LruDict[tuple[str, str], bytes](MAX_CACHED_DRAWS)
        request.app.state.drawn_draws = cache
    return cache


def _id(request: Request, name: str) -> str:
    value: str = request.path_params[name]
    if not tokens.valid_id(value):
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}: not a valid id")
    return value


async def list_draws(request: Request) -> Response:
    """``GET /api/rooms/{room}/draws``: the room's draws, newest first (no entrants)."""
    room = _id(request, "room")
    draws = ctx(request).stores.draws
    found = [await draws.get(room, did) for did in await draws.ids(room)]
    return JSONResponse(
        {"draws": [d.public() for d in found if d is not None]},
        headers={"Cache-Control": "max-age=2"},
    )


async def get_draw(request: Request) -> Response:
    """``GET /api/rooms/{room}/draws/{draw}``: one draw; once drawn, with ``entrants_list``
    (sorted) so that anyone can re-derive the winners from the seed."""
    room, did = _id(request, "room"), _id(request, "draw")
    cache = _drawn_cache(request)
    kept = cache.get((room, did))
    if kept is None:
        draws = ctx(request).stores.draws
        found = await draws.get(room, did)
        if found is None:
            raise LivecoreError(ErrorCode.DRAW_NOT_FOUND, f"no draw {did!r} in room {room!r}")
        body = found.public()
        if found.status is not DrawStatus.DRAWN:
            return JSONResponse(body)
        body["entrants_list"] = await draws.entrants(room, did)
        kept = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        cache[(room, did)] = kept
    return Response(kept, media_type="application/json", headers={"Cache-Control": "max-age=3600"})


def routes() -> list[Route]:
    return [
        Route("/api/rooms/{room}/draws", list_draws, methods=["GET"]),
        Route("/api/rooms/{room}/draws/{draw}", get_draw, methods=["GET"]),
    ]
