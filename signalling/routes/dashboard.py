"""Read-only figures for the live dashboard (实时看板) and the brand board (总部大屏).

Everything is read from the state the room already keeps (counters, polls,
group buys, the leaderboard, the event history); nothing here writes.

- ``GET /api/rooms/{room}/dashboard``: the room's host or an admin.
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
from livecore.store.polls import PollStore
from livecore.store.replies import as_str
from signalling.node.context import NodeContext
from signalling.node.http_boundary import authorize, ctx

VIEWERS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})
ADMINS = frozenset({tokens.Role.ADMIN})
#: Events read back for the per-minute comment counts and the testimonial wall.
HISTORY_SCAN = 2000
MINUTES = 30
BOARD_ROOMS = 50
WALL_MAX = 30
#: A node's viewer report older than this is a node that died.
VIEWERS_STALE_S = 30


def _room_id(request: Request) -> str:
    room: str = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


def _polls(request: Request) -> PollStore:
    state = request.app.state
    store: PollStore | None = getattr(state, "dashboard_polls", None)
    if store is None:
        redis = ctx(request).redis
        store = PollStore(redis, Bus(redis))
        state.dashboard_polls = store
    return store


def unit_cents(spec: dict[str, str], members: int, bonus: bool) -> int:
    """Price each member pays per item (tiers from the stored ``m:d,m:d``, then the bonus)."""
    discount = 0
    for part in filter(None, spec.get("tiers", "").split(",")):
        at_least, _, cents = part.partition(":")
        if members >= int(at_least):
            discount = int(cents)
    bonus_cents = int(spec.get("bonus_cents", "0") or 0) if bonus else 0
    return int(spec.get("price", "0")) - discount - bonus_cents


async def viewers(node: NodeContext, room: str) -> int:
    raw = await node.redis.hgetall(keys.room(room, "viewers"))
    now = node.clock.time()
    total = 0
    for value in raw.values():
        count, _, at = as_str(value).partition(":")
        if count.isdigit() and at.isdigit() and int(at) + VIEWERS_STALE_S >= now:
            total += int(count)
    return total


#: Members of one group read to tell guests from shop-verified users (beyond: partial).
MEMBERS_SCANNED = 10_000


async def guests_among(node: NodeContext, members_key: str) -> tuple[int, bool]:
    """How many of a group's members are guests (device ids, not shop accounts), and
    whether every member was read (a group over MEMBERS_SCANNED is counted in part)."""
    guests = seen = 0
    async for member, _ in node.redis.hscan_iter(members_key, count=1000):
        seen += 1
        guests += tokens.is_guest(as_str(member))
        if seen >= MEMBERS_SCANNED:
            return guests, False
    return guests, True


async def groups(node: NodeContext, room: str, split: bool = False) -> list[dict[str, Any]]:
    """Every group of every group buy of the room, with its price and sales; with
    ``split``, how many members are guests and how many shop-verified users."""
    redis = node.redis
    out: list[dict[str, Any]] = []
    for gid in sorted(as_str(g) for g in await redis.smembers(keys.room(room, "gbs"))):
        base = keys.room(room, f"gb:{gid}")
        spec = {as_str(k): as_str(v) for k, v in (await redis.hgetall(base)).items()}
        if not spec:
            continue
        target = int(spec.get("target", "0"))
        for grp in sorted(as_str(g) for g in await redis.smembers(f"{base}:groups")):
            n, q, s, b = await redis.hmget(f"{base}:g:{grp}", ["n", "q", "s", "b"])
            members, qty, bonus = int(n or 0), int(q or 0), b == b"1"
            unit = unit_cents(spec, members, bonus)
            out.append({
                "gb": gid, "product": spec.get("product", ""), "group": grp,
                "scope": spec.get("scope", "community"), "n": members, "q": qty,
                "target": target, "s": as_str(s) if s else "open", "unit_cents": unit,
                "sales_cents": unit * qty, "deadline": int(spec.get("deadline", "0")),
            })  # fmt: skip
            if split:
                guests, whole = await guests_among(node, f"{base}:m:{grp}")
                out[-1].update(guests=guests, verified=max(0, members - guests), counted=whole)
    return out


def comments_per_minute(events: list[tuple[int, bytes]], now: float) -> list[list[int]]:
    """[[minute start (Unix s), comments], …] for the last MINUTES minutes (zeros included)."""
    first = int(now // 60) * 60 - (MINUTES - 1) * 60
    counts: Counter[int] = Counter()
    for _, payload in events:
        try:
            ev = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException):
            continue
        if isinstance(ev, dict) and ev.get("t") == "comment" and isinstance(ev.get("ts"), int):
            minute = ev["ts"] // 60_000 * 60
            if minute >= first:
                counts[minute] += 1
    return [[first + 60 * i, counts[first + 60 * i]] for i in range(MINUTES)]


def _poll(p: Any) -> dict[str, Any]:
    return {"poll": p.id, "question": p.question, "options": p.options, "counts": p.counts,
            "status": p.status}  # fmt: skip


async def room_figures(node: NodeContext, request: Request, room: str) -> dict[str, Any]:
    found = await node.rooms.get(room)
    if found is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    redis = node.redis
    likes = int(await redis.get(keys.room(room, "likes")) or 0)
    polls = await _polls(request).all(room)
    rows = await groups(node, room, split=True)
    board: Any = await redis.zrevrange(keys.room(room, "leaderboard"), 0, 9, withscores=True)
    history = await Bus(redis).recent(room, HISTORY_SCAN)
    per_minute = comments_per_minute(history, node.clock.time())
    return {
        "room": found.public(),
        "at": int(node.clock.time()),
        "viewers": await viewers(node, room),
        "likes": likes,
        "comments": sum(c for _, c in per_minute),
        "comments_per_minute": per_minute,
        "votes": sum(sum(p.counts) for p in polls),
        "polls": [_poll(p) for p in polls[:5]],
        "groups": rows,
        "orders": {
            "buyers": int(await redis.hlen(keys.room(room, "buys"))),
            "members": sum(g["n"] for g in rows),
            "guests": sum(g["guests"] for g in rows),
            "verified": sum(g["verified"] for g in rows),
            "items": sum(g["q"] for g in rows),
            "sales_cents": sum(g["sales_cents"] for g in rows if g["s"] == "formed"),
            "pending_cents": sum(g["sales_cents"] for g in rows if g["s"] == "open"),
            "formed": sum(1 for g in rows if g["s"] == "formed"),
        },
        "officers": [[as_str(u), int(c)] for u, c in board],
    }


async def room_dashboard(request: Request) -> Response:
    room = _room_id(request)
    await authorize(request, room=room, roles=VIEWERS)
    node = ctx(request)
    return JSONResponse(await room_figures(node, request, room))


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
