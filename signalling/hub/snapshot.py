"""What a client receives on connect: the room's state, then the events after it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import DEFAULT_LEVEL1_BP, DEFAULT_LEVEL2_BP
from livecore.tokens import Claims, Role
from signalling.hub.context import Services
from signalling.hub.groupview import (
    group_states,
    officer_links,
    spec_of,
    visible_groups,
)
from signalling.hub.reading import Reading
from signalling.hub.room import LocalRoom

#: Comments in a snapshot, and events read back to find them.
SNAPSHOT_COMMENTS = 50
RECENT_SCAN = 300
#: Closed polls shown besides the open ones.
CLOSED_POLLS = 3
#: Communities whose group states one reading keeps.
SHARE_GROUPS = 64


@dataclass
class State:
    """One visitor's snapshot before it is built: the shared reading and theirs."""

    reading: Reading
    #: The visitor's community (id), whose groups they see.
    place: str | None
    groups: dict[str, Any]
    officer: dict[str, Any] | None
    community: dict[str, Any] | None
    mine: dict[str, int]
    my_votes: dict[str, int]
    #: {fs: units} of the room's flash sale and {cp: copies} of its coupons this
    #: visitor holds (read only in a room with a sale or coupons).
    my_flash: dict[str, int] = field(default_factory=dict)
    my_coupons: dict[str, int] = field(default_factory=dict)

    @property
    def offset(self) -> int:
        return self.reading.offset


async def shared(node: Services, room: LocalRoom) -> Reading:
    """A fresh reading of ``room`` (the current one, or one read now and shared
    with the visitors arriving while it is read)."""
    now = time.monotonic()
    reading = room.reading
    if reading is not None and reading.fresh(now):
        return reading
    task = room.reading_task
    if task is None or task.done():
        reading = Reading(started=now)
        room.reading = reading  # collects the events flushed from now on
        task = asyncio.get_running_loop().create_task(_read_room(node, room.id, reading))
        task.add_done_callback(_retrieved)
        room.reading_task = task
    return await asyncio.shield(task)


def _retrieved(task: asyncio.Task[Reading]) -> None:
    """A failed reading fails its visitors (they are told the store is unavailable)."""
    if not task.cancelled():
        task.exception()


async def _read_room(node: Services, room_id: str, reading: Reading) -> Reading:
    stores = node.stores
    bus = stores.bus
    head = await bus.head(room_id)
    recent = await bus.recent(room_id, RECENT_SCAN)
    deleted = await bus.deleted(room_id)
    meta = await stores.rooms.get(room_id)
    reading.meta = meta.public() if meta is not None else None
    reading.room_state = await bus.state(room_id)
    reading.polls = await stores.polls.all(room_id)
    reading.likes = await stores.counters.add_likes(room_id, 0)
    for offset, payload in recent:
        event = msgpack.unpackb(payload, raw=False)
        if event.get("t") == wire.EventType.COMMENT and offset not in deleted:
            reading.comments.append(wire.encode_event(offset, event))
    del reading.comments[:-SNAPSHOT_COMMENTS]
    for gid in await stores.groupbuys.open_ids(room_id):
        spec = await spec_of(node, room_id, gid)
        if spec is not None:
            reading.groupbuys.append({"gb": gid, **spec.public()})
    reading.flash = await stores.flash.current(room_id)
    reading.coupons = await stores.coupons.all(room_id)
    await stores.communities.refresh()
    now = node.now()
    origins = await stores.media.origins(room_id)
    reading.streams = sorted(u for u, o in origins.items() if not o.is_stale(now))
    reading.offset = max(head.offset, recent[-1][0] if recent else 0)
    reading.events = [e for e in reading.events if e["o"] > reading.offset]
    reading.ready = True
    return reading


async def read(node: Services, room: LocalRoom, claims: Claims, community: str | None) -> State:
    """The room's state (shared) and this visitor's own part of it.

    Hosts see every group of every group buy; others the groups of their
    community (and room-wide groups)."""
    reading = await shared(node, room)
    everyone = claims.role is Role.HOST
    key = (community or "", everyone)
    groups = reading.groups.get(key)
    if groups is None:
        groups = await group_states(node, room.id, community, everyone=everyone)
        if len(reading.groups) < SHARE_GROUPS:
            reading.groups[key] = groups
    # with the polls and group buys opened since the reading (their events follow it)
    later = reading.events[:] if not reading.overflowed else []
    gids = [b["gb"] for b in reading.groupbuys]
    gids += [e["gb"] for e in later if e.get("t") == wire.EventType.GROUPBUY_OPENED]
    pids = [p.id for p in reading.polls if p.status == "open"]
    pids += [e["poll"] for e in later if e.get("t") == wire.EventType.POLL_OPENED]
    revoked = node.stores.revocations.check(claims)  # in the same batch as the next call
    visitor = await node.stores.visitors.read(room.id, claims.user, gids, pids)
    if await revoked:
        raise LivecoreError(ErrorCode.TOKEN_REVOKED, "this token was revoked")
    officer = visitor.officer
    links = officer_links(node.settings.base_url, room.id, officer.code) if officer else {}
    place = node.stores.communities.index.by_id.get(community or "")
    state = State(
        reading, community, groups, officer.public(links) if officer else None,
        place.public() if place else None,
        {gb: int(str(m["qty"])) for gb, m in visitor.joined.items()}, visitor.votes,
    )  # fmt: skip
    sale = reading.flash["fs"] if reading.flash else None
    if sale is not None or reading.coupons:
        cids = [c["cp"] for c in reading.coupons]
        units, claimed = await node.stores.coupons.holdings(room.id, claims.user, sale, cids)
        state.my_flash = {sale: units} if sale is not None and units else {}
        state.my_coupons = claimed
    return state


def build(
    state: State,
    events: list[dict[str, Any]],
    room: LocalRoom,
    meta: dict[str, Any],
    claims: Claims,
) -> dict[str, Any]:
    """The snapshot message. ``offset`` is what the room has flushed: every later
    event comes in batches; ``events`` (after the state's own offset) are applied
    on top of the state by the client, idempotently."""
    flushed = room.flushed
    reading = state.reading
    comments = [c for c in reading.comments if c["o"] <= flushed]
    # the comments flushed since the reading, and their deletions, folded in
    gone = {e.get("target") for e in events if e.get("t") == wire.EventType.COMMENT_DELETED}
    comments += [e for e in events if e.get("t") == wire.EventType.COMMENT]
    comments = [c for c in comments if c["o"] not in gone][-SNAPSHOT_COMMENTS:]
    open_polls = [p.public() for p in reading.polls if p.status == "open"]
    closed = [p.public() for p in reading.polls if p.status != "open"][:CLOSED_POLLS]
    for poll in open_polls:  # a fresher tally may have reached this node already
        known = room.tallies.get(poll["poll"])
        if known is not None and known[0] > poll["v"]:
            poll["v"], poll["counts"] = known
    groups = {gb: dict(states) for gb, states in state.groups.items()}
    fresher = visible_groups(room.groups, is_host=claims.role is Role.HOST, community=state.place)
    for gb, states in fresher.items():  # progress this node heard of since the reading
        for group, known in states.items():
            held = groups.get(gb, {}).get(group)
            if gb in groups and (held is None or known["v"] > held["v"]):
                groups[gb][group] = known
    room_state = reading.room_state
    question = room_state.get("question")
    cards = {k.split(":", 1)[1]: v for k, v in room_state.items() if k.startswith("card:")}
    return {
        "t": wire.ServerType.SNAPSHOT.value,
        "epoch": room.epoch,
        "offset": flushed,
        "room": meta,
        "you": {"user": claims.user, "role": claims.role.value, "community": claims.community},
        "viewers": room.viewers,
        "likes": max(reading.likes, room.likes),
        "polls": open_polls + closed,
        "cards": cards,
        "question": None if question is not None and question.get("target") in gone else question,
        "comments": comments,
        "events": events,
        "groupbuys": reading.groupbuys,
        "groups": groups,
        "community": state.community,
        "officer": state.officer,
        "leaderboard": room.leaderboard,
        "streams": reading.streams,
        "mine": state.mine,
        "my_votes": state.my_votes,
        "commission": _commission(room_state.get("commission")),
        "flash": _fresher_flash(reading.flash, room),
        "coupons": _fresher_coupons(reading.coupons, room),
        "my_flash": state.my_flash,
        "my_coupons": state.my_coupons,
    }


def _fresher_flash(read: dict[str, Any] | None, room: LocalRoom) -> dict[str, Any] | None:
    """The reading's flash sale with the progress this node heard of since laid over it."""
    known = room.flash
    if read is None or known is None or known["fs"] != read["fs"] or known["v"] <= read["v"]:
        return read
    return {**read, **known}


def _fresher_coupons(read: list[dict[str, Any]], room: LocalRoom) -> list[dict[str, Any]]:
    out = []
    for coupon in read:
        known = room.coupons.get(coupon["cp"])
        out.append({**coupon, **known} if known and known["v"] > coupon["v"] else coupon)
    return out


def _commission(stored: Any) -> dict[str, int]:
    level1, level2 = stored if stored else (DEFAULT_LEVEL1_BP, DEFAULT_LEVEL2_BP)
    return {"level1_bp": int(level1), "level2_bp": int(level2)}


def live_state(room: LocalRoom, claims: Claims, community: str | None) -> dict[str, Any]:
    """The coalesced state as this node knows it now (sent with ``recovered``)."""
    groups = visible_groups(room.groups, is_host=claims.role is Role.HOST, community=community)
    return {
        "likes": room.likes,
        "viewers": room.viewers,
        "tallies": {p: {"v": v, "counts": c} for p, (v, c) in room.tallies.items()},
        "groups": groups,
        "leaderboard": room.leaderboard,
        **({"flash": room.flash} if room.flash is not None else {}),
        **({"coupons": dict(room.coupons)} if room.coupons else {}),
    }
