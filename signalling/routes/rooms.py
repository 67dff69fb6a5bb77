"""REST for rooms: a host creates one, anyone reads its public state."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import rooms, tokens
from livecore.errors import ErrorCode, LivecoreError
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json

CREATORS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})


async def create_room(request: Request) -> Response:
    """``POST /api/rooms`` with a host token for that room id (or an admin token)."""
    limit_writes(request)
    body = await read_json(request)
    node = ctx(request)
    room_id = body.get("id") if isinstance(body, dict) else None
    acted_on = room_id if isinstance(room_id, str) else None
    claims = await authorize(request, room=acted_on, roles=CREATORS)
    room = rooms.new_room(body, host=claims.user, now=node.clock.time())
    if not await node.rooms.create(room):
        raise LivecoreError(ErrorCode.ROOM_EXISTS, f"room {room.id!r} already exists")
    _list_cache(request).until = 0.0  # this node lists its new room at once
    return JSONResponse(
        room.public(), status_code=201, headers={"Location": f"/api/rooms/{room.id}"}
    )


async def get_room(request: Request) -> Response:
    """``GET /api/rooms/{room}``: public state, no token needed."""
    room_id = request.path_params["room"]
    if not tokens.valid_id(room_id):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    room = await ctx(request).rooms.get(room_id)
    if room is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room_id!r} does not exist")
    body = room.public()
    if ctx(request).settings.demo:
        body["demo"] = True  # the host console shows the demo's shop stand-in
    return JSONResponse(body)


#: Seconds a node reuses its answer to ``GET /api/rooms`` (unauthenticated, so cheap).
LIST_CACHE_S = 2.0


class _ListCache:
    """The last ``GET /api/rooms`` body of this node, until it is ``LIST_CACHE_S`` old."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.until = 0.0


def _list_cache(request: Request) -> _ListCache:
    cache = getattr(request.app.state, "rooms_list", None)
    if not isinstance(cache, _ListCache):
        cache = _ListCache()
        request.app.state.rooms_list = cache
    return cache


async def end_room(request: Request) -> Response:
    """``POST /api/rooms/{room}/end`` (the room's host, or admin): the live ends now."""
    limit_writes(request)
    room_id = request.path_params["room"]
    if not tokens.valid_id(room_id):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    await authorize(request, room=room_id, roles=CREATORS)
    done = await request.app.state.lifecycle.end(room_id)
    if done == -1:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room_id!r} does not exist")
    return JSONResponse({"ended": True, "already": done == 0})


async def list_rooms(request: Request) -> Response:
    """``GET /api/rooms``: the 50 most recently created rooms (cached for 2 s)."""
    node = ctx(request)
    cache = _list_cache(request)
    now = node.clock.monotonic()
    if cache.until <= now:
        rooms = await node.rooms.recent_rooms()
        cache.body = {"rooms": [r.public() for r in rooms]}
        cache.until = now + LIST_CACHE_S
    return JSONResponse(cache.body)
