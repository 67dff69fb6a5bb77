"""Read-only figures for the live dashboard (实时看板) and the brand board (总部大屏).

Everything is read from the state the room already keeps (counters, polls,
group buys, the leaderboard, the event history: :mod:`signalling.services.figures`)
and the room's sampled history (:mod:`livecore.store.dash_history`); nothing here
writes.

- ``GET /api/rooms/{room}/dashboard``: the room's host or an admin; its
  ``history`` holds the samples taken since the live began, so the charts open
  with the live so far.
- ``GET /api/board``: an admin (the brand's headquarters): every recent room,
  sales and group progress per community, the top officers across rooms.
- ``GET /api/rooms/{room}/testimonials``: public, the room's testimonial wall.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgpack
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store import keys
from livecore.store.bus import Bus
from livecore.store.replies import as_str
from signalling.node.http_boundary import authorize, ctx
from signalling.services.figures import HISTORY_SCAN, groups, room_figures, viewers

VIEWERS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})
ADMINS = frozenset({tokens.Role.ADMIN})
BOARD_ROOMS = 50
WALL_MAX = 30


def _room_id(request: Request) -> str:
    room: str = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


async def room_dashboard(request: Request) -> Response:
    room = _room_id(request)
    await authorize(request, room=room, roles=VIEWERS)
    node = ctx(request)
    return JSONResponse(await room_figures(node, room, split=True))


async def brand_board(request: Request) -> Response:
    await authorize(request, room=None, roles=ADMINS)
    node = ctx(request)
    rooms_out: list[dict[str, Any]] = []
    communities: dict[str, dict[str, Any]] = {}
    officers: Counter[str] = Counter()
    names: dict[str, str] = {}  # guests' nicknames, from the rooms they earned in
    for room_id in await node.rooms.recent(BOARD_ROOMS):
        found = await node.rooms.get(room_id)
        if found is None:
            continue
        rows = await groups(node, room_id)
        sales = sum(g["sales_cents"] for g in rows if g["s"] == "formed")
        rooms_out.append({
            "id": room_id, "title": found.title, "store": found.store,
            "status": found.status.value, "viewers": await viewers(node, room_id),
            "likes": int(await node.redis.get(keys.room(room_id, "likes")) or 0),
            "members": sum(g["n"] for g in rows), "sales_cents": sales,
        })  # fmt: skip
        for g in rows:
            c = communities.setdefault(
                g["group"],
                {"community": g["group"], "members": 0, "items": 0, "sales_cents": 0,
                 "formed": 0, "groups": 0, "progress": 0.0},
            )  # fmt: skip
            c["members"] += g["n"]
            c["items"] += g["q"]
            c["groups"] += 1
            if g["s"] == "formed":
                c["formed"] += 1
                c["sales_cents"] += g["sales_cents"]
            if g["target"]:
                c["progress"] = max(c["progress"], min(1.0, g["n"] / g["target"]))
        top = keys.room(room_id, "leaderboard")
        board: Any = await node.redis.zrevrange(top, 0, 19, withscores=True)
        for user, cents in board:
            officers[as_str(user)] += int(cents)
        if board:
            users = [as_str(u) for u, _ in board]
            nicks: list[Any] = await node.redis.hmget(keys.room(room_id, "names"), users)
            names.update({u: as_str(n) for u, n in zip(users, nicks, strict=True) if n})
    return JSONResponse({
        "at": int(node.clock.time()),
        "rooms": rooms_out,
        "communities": sorted(communities.values(), key=lambda c: -c["sales_cents"] - c["members"]),
        "officers": [[u, c] for u, c in officers.most_common(10)],
        "names": {u: names[u] for u, _ in officers.most_common(10) if u in names},
        "totals": {
            "viewers": sum(r["viewers"] for r in rooms_out),
            "members": sum(r["members"] for r in rooms_out),
            "sales_cents": sum(r["sales_cents"] for r in rooms_out),
            "live": sum(1 for r in rooms_out if r["status"] == "live"),
        },
    })  # fmt: skip


async def testimonials(request: Request) -> Response:
    """The room's testimonial cards still in its history, newest first (at most 30)."""
    room = _room_id(request)
    node = ctx(request)
    if await node.rooms.get(room) is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    wall: list[dict[str, Any]] = []
    for offset, payload in reversed(await Bus(node.redis).recent(room, HISTORY_SCAN)):
        try:
            ev = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException):
            continue
        card = ev.get("card") if isinstance(ev, dict) and ev.get("t") == "card" else None
        if isinstance(card, dict) and card.get("kind") == "testimonial":
            wall.append({"o": offset, "author": card.get("author"), "text": card.get("text")})
            if len(wall) >= WALL_MAX:
                break
    return JSONResponse({"testimonials": wall}, headers={"Cache-Control": "max-age=5"})


def routes() -> list[Route]:
    return [
        Route("/api/rooms/{room}/dashboard", room_dashboard, methods=["GET"]),
        Route("/api/rooms/{room}/testimonials", testimonials, methods=["GET"]),
        Route("/api/board", brand_board, methods=["GET"]),
    ]
