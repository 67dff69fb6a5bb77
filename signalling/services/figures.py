"""The figures of a room that the dashboard shows and samples, read from the
state the room already keeps (counters, polls, group buys, the leaderboard, the
event history); nothing here writes.

Used by the dashboard endpoints (:mod:`signalling.routes.dashboard`) and the
history sampler (:mod:`signalling.services.dash_sampler`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgpack

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store import keys
from livecore.store.replies import as_str
from signalling.node.context import NodeContext

#: Events read back for the per-minute comment counts and the testimonial wall.
HISTORY_SCAN = 2000
MINUTES = 30
#: A node's viewer report older than this is a node that died.
VIEWERS_STALE_S = 30


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


async def room_figures(node: NodeContext, room: str, split: bool = False) -> dict[str, Any]:
    """The dashboard's figures of a room (``room_not_found`` for an unknown room); with
    ``split`` (the dashboard, not the sampler), guests and verified members apart."""
    found = await node.rooms.get(room)
    if found is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    redis = node.redis
    likes = int(await redis.get(keys.room(room, "likes")) or 0)
    polls = await node.stores.polls.all(room)
    rows = await groups(node, room, split)
    board: Any = await redis.zrevrange(keys.room(room, "leaderboard"), 0, 9, withscores=True)
    history = await node.stores.bus.recent(room, HISTORY_SCAN)
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
            **(
                {
                    "guests": sum(g["guests"] for g in rows),
                    "verified": sum(g["verified"] for g in rows),
                }
                if split
                else {}
            ),
            "items": sum(g["q"] for g in rows),
            "sales_cents": sum(g["sales_cents"] for g in rows if g["s"] == "formed"),
            "pending_cents": sum(g["sales_cents"] for g in rows if g["s"] == "open"),
            "formed": sum(1 for g in rows if g["s"] == "formed"),
        },
        "officers": [[as_str(u), int(c)] for u, c in board],
        "history": await node.stores.history.read(room),
        **(await commerce(node, room)),
        "toolkit": await toolkit(node, room),
    }


async def toolkit(node: NodeContext, room: str) -> dict[str, int]:
    """Lucky draws, reservations and pickups: the latest draw's entrants, the room's
    reservations, pickup codes issued and redeemed."""
    stores = node.stores
    latest = next(iter(await stores.draws.ids(room)), None)
    found = await stores.draws.get(room, latest) if latest is not None else None
    _, reserved = await stores.reservations.status(room, "")
    issued, redeemed = await stores.pickups.stats(room)
    return {
        "draw_entrants": found.entrants if found is not None else 0,
        "reservations": reserved,
        "pickups_issued": issued,
        "pickups_redeemed": redeemed,
    }


async def commerce(node: NodeContext, room: str) -> dict[str, Any]:
    """The room's latest flash sale (sold of stock, its state, what it sold for) and its
    coupons (claimed of quota)."""
    sale = await node.stores.flash.current(room)
    flash = None
    if sale is not None:
        flash = {k: sale[k] for k in ("fs", "product", "price_cents", "stock", "sold", "s")}
        flash["sales_cents"] = sale["price_cents"] * sale["sold"]
    coupons = [{k: c[k] for k in ("cp", "title", "off_cents", "quota", "claimed")}
               for c in await node.stores.coupons.all(room)]  # fmt: skip
    return {"flash": flash, "coupons": coupons}
