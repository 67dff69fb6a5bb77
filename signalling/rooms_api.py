"""REST for rooms: a host creates one, anyone reads its public state."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import rooms, tokens
from livecore.errors import ErrorCode, LivecoreError
from signalling.http_boundary import authorize, ctx, limit_writes, read_json

CREATORS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})


async def create_room(request: Request) -> Response:
    """``POST /api/rooms`` with a host token for that room id (or an admin token)."""
    limit_writes(request)
    body = await read_json(request)
    node = ctx(request)
    room_id = body.get("id") if isinstance(body, dict) else None
    claims = authorize(request, room=room_id if isinstance(room_id, str) else None, roles=CREATORS)
    room = rooms.new_room(body, host=claims.user, now=node.clock.time())
    if not await node.rooms.create(room):
        raise LivecoreError(ErrorCode.ROOM_EXISTS, f"room {room.id!r} already exists")
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
    return JSONResponse(room.public())


async def end_room(request: Request) -> Response:
    """``POST /api/rooms/{room}/end`` (the room's host, or admin): the live ends now."""
    limit_writes(request)
    room_id = request.path_params["room"]
    if not tokens.valid_id(room_id):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    authorize(request, room=room_id, roles=CREATORS)
    done = await request.app.state.lifecycle.end(room_id)
    if done == -1:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room_id!r} does not exist")
    return JSONResponse({"ended": True, "already": done == 0})


async def list_rooms(request: Request) -> Response:
    """``GET /api/rooms``: the 50 most recently created rooms."""
    node = ctx(request)
    found = [await node.rooms.get(room_id) for room_id in await node.rooms.recent()]
    return JSONResponse({"rooms": [r.public() for r in found if r is not None]})
