"""Read-only, public group-buy progress of a room (for the clip share page).

``GET /api/rooms/{room}/groupbuys``: the room's group buys (newest ids first,
at most ``MAX_GROUPBUYS``) with their public spec, status and the progress of
their biggest groups (at most ``MAX_GROUPS``: members, quantity, status). No
token: a neighbour who opened a forwarded clip sees how close the groups are.
Reads only; members' ids and commission levels are never shown.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store import keys
from signalling.node.http_boundary import ctx

MAX_GROUPBUYS = 10
MAX_GROUPS = 20
PUBLIC_SPEC = ("product", "price_cents", "target", "deadline", "max_qty", "scope")


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def groupbuys(request: Request) -> Response:
    room = str(request.path_params["room"])
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    node = ctx(request)
    if await node.rooms.get(room) is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    redis = node.redis
    gids = sorted((_s(g) for g in await redis.smembers(keys.room(room, "gbs"))), reverse=True)
    out: list[dict[str, Any]] = []
    for gid in gids[:MAX_GROUPBUYS]:
        raw = {_s(k): _s(v) for k, v in (await redis.hgetall(keys.room(room, f"gb:{gid}"))).items()}
        if not raw:
            continue
        spec: dict[str, Any] = {
            k: (int(raw[k]) if raw[k].isdigit() else raw[k]) for k in PUBLIC_SPEC if k in raw
        }
        if raw.get("price", "").isdigit():  # the store keeps the price as ``price``
            spec["price_cents"] = int(raw["price"])
        groups: list[dict[str, Any]] = []
        names = [_s(g) for g in await redis.smembers(keys.room(room, f"gb:{gid}:groups"))]
        for name in names[: MAX_GROUPS * 5]:
            n, q, st = await redis.hmget(keys.room(room, f"gb:{gid}:g:{name}"), ["n", "q", "s"])
            groups.append({"group": name, "members": int(n or 0), "qty": int(q or 0),
                           "status": _s(st) if st else "open"})  # fmt: skip
        groups.sort(key=lambda g: (-g["members"], g["group"]))
        out.append({"id": gid, "status": raw.get("status", "open"), **spec,
                    "groups": groups[:MAX_GROUPS]})  # fmt: skip
    return JSONResponse({"groupbuys": out})
