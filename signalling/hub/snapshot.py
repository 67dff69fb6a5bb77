"""What a client receives on connect: the room's state, then the events after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from livecore import wire
from livecore.groupbuy import DEFAULT_LEVEL1_BP, DEFAULT_LEVEL2_BP
from livecore.store.polls import Poll
from livecore.tokens import Claims, Role
from signalling.hub.context import Services
from signalling.hub.groupview import (
    group_states,
    officer_links,
    spec_of,
    visible_groups,
)
from signalling.hub.room import LocalRoom

#: Comments in a snapshot, and events read back to find them.
SNAPSHOT_COMMENTS = 50
RECENT_SCAN = 300
#: Closed polls shown besides the open ones.
CLOSED_POLLS = 3


@dataclass
class State:
    offset: int
    comments: list[dict[str, Any]]
    polls: list[Poll]
    room_state: dict[str, Any]
    likes: int
    groupbuys: list[dict[str, Any]]
    groups: dict[str, Any]
    officer: dict[str, Any] | None
    community: dict[str, Any] | None
    streams: list[str]
    mine: dict[str, int]
    my_votes: dict[str, int]


async def read(node: Services, room_id: str, claims: Claims, community: str | None) -> State:
    """Read the room's state from Valkey; ``offset`` is the history head it reflects.

    Hosts see every group of every group buy; others the groups of their
    community (and room-wide groups)."""
    stores = node.stores
    bus = stores.bus
    head = await bus.head(room_id)
    recent = await bus.recent(room_id, RECENT_SCAN)
    deleted = await bus.deleted(room_id)
    room_state = await bus.state(room_id)
    polls = await stores.polls.all(room_id)
    likes = await stores.counters.add_likes(room_id, 0)
    comments = []
    for offset, payload in recent:
        event = msgpack.unpackb(payload, raw=False)
        if event.get("t") == wire.EventType.COMMENT and offset not in deleted:
            comments.append(wire.encode_event(offset, event))
    offset = max(head.offset, recent[-1][0] if recent else 0)
    groupbuys = []
    for gid in await stores.groupbuys.open_ids(room_id):
        spec = await spec_of(node, room_id, gid)
        if spec is not None:
            groupbuys.append({"gb": gid, **spec.public()})
    is_host = claims.role is Role.HOST
    groups = await group_states(node, room_id, community, everyone=is_host)
    officer = await stores.officers.get(room_id, claims.user)
    index = await stores.communities.refresh()
    place = index.by_id.get(community or "")
    now = node.now()
    origins = await stores.media.origins(room_id)
    streams = sorted(u for u, o in origins.items() if not o.is_stale(now))
    joined = await stores.groupbuys.mine(room_id, claims.user, [b["gb"] for b in groupbuys])
    mine = {gb: m["qty"] for gb, m in joined.items()}
    my_votes: dict[str, int] = {}
    for poll in polls:
        if poll.status == "open":
            vote = await stores.polls.vote_of(room_id, poll.id, claims.user)
            if vote is not None:
                my_votes[poll.id] = vote
    links = officer_links(node.settings.base_url, room_id, officer.code) if officer else {}
    return State(
        offset, comments, polls, room_state, likes, groupbuys, groups,
        officer.public(links) if officer else None,
        place.public() if place else None,
        streams, mine, my_votes,
    )  # fmt: skip


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
    comments = [c for c in state.comments if c["o"] <= flushed][-SNAPSHOT_COMMENTS:]
    open_polls = [p.public() for p in state.polls if p.status == "open"]
    closed = [p.public() for p in state.polls if p.status != "open"][:CLOSED_POLLS]
    for poll in open_polls:  # a fresher tally may have reached this node already
        known = room.tallies.get(poll["poll"])
        if known is not None and known[0] > poll["v"]:
            poll["v"], poll["counts"] = known
    cards = {k.split(":", 1)[1]: v for k, v in state.room_state.items() if k.startswith("card:")}
    return {
        "t": wire.ServerType.SNAPSHOT.value,
        "epoch": room.epoch,
        "offset": flushed,
        "room": meta,
        "you": {"user": claims.user, "role": claims.role.value, "community": claims.community},
        "viewers": room.viewers,
        "likes": max(state.likes, room.likes),
        "polls": open_polls + closed,
        "cards": cards,
        "question": state.room_state.get("question"),
        "comments": comments,
        "events": events,
        "groupbuys": state.groupbuys,
        "groups": state.groups,
        "community": state.community,
        "officer": state.officer,
        "leaderboard": room.leaderboard,
        "streams": state.streams,
        "mine": state.mine,
        "my_votes": state.my_votes,
        "commission": _commission(state.room_state.get("commission")),
    }


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
    }
