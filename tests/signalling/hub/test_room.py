"""LocalRoom bookkeeping without a network: batches, group pushes, closing group buys."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack

from livecore.sequencer import Sequencer
from livecore.tokens import Claims, Role
from signalling.hub.room import GROUP_PUSH_INTERVAL_S, LocalRoom


def state(v: int) -> dict[str, object]:
    return {"v": v, "n": v, "scope": "community"}


def test_group_pushes_are_capped_per_group() -> None:
    """A group changing every tick goes out at most every GROUP_PUSH_INTERVAL_S."""
    room = LocalRoom("r", Sequencer("e", 0))
    room.set_group("g1", "c1", state(1))
    assert len(room.group_frames(now=10.0)) == 1
    room.set_group("g1", "c1", state(2))
    assert room.group_frames(now=10.0 + GROUP_PUSH_INTERVAL_S / 2) == []
    assert len(room.group_frames(now=10.0 + GROUP_PUSH_INTERVAL_S * 1.01)) == 1


def test_closing_a_group_buy_with_a_pending_push() -> None:
    """groupbuy_closed while a group's push waits drops it cleanly (no KeyError)."""
    room = LocalRoom("r", Sequencer("e", 0))
    room.set_group("g1", "c1", state(1))
    room.group_frames(now=10.0)
    room.set_group("g1", "c1", state(2))  # waits for the interval
    room.add_events([(1, msgpack.packb({"t": "groupbuy_closed", "gb": "g1"}))])
    assert room.group_frames(now=20.0) == []
    assert room.groups == {}


def test_older_versions_are_ignored() -> None:
    """A group state with a lower version than the known one changes nothing."""
    room = LocalRoom("r", Sequencer("e", 0))
    room.set_group("g1", "c1", state(5))
    room.group_frames(now=1.0)
    room.set_group("g1", "c1", state(4))
    assert room.groups[("g1", "c1")]["v"] == 5 and not room.dirty_groups


class _Conn:
    """What the room reads of a connection: its claims' role and its community."""

    def __init__(self, community: str | None, role: str = "viewer") -> None:
        self.claims: Claims | None = Claims(Role(role), "r", "u", 0)
        self.community = community
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.last_heard = 0.0

    def close(self, code: int, reason: str = "") -> None: ...

    def ping(self) -> None: ...


def test_group_pushes_are_one_frame_per_community_per_tick() -> None:
    """Three groups of c1, one of c2 and a room-wide group change in one tick: each
    viewer gets one frame with its community's groups and the room-wide one, a
    viewer of an unchanged community the room-wide one, hosts one with all."""
    room = LocalRoom("r", Sequencer("e", 0))
    c1, c2, c3, host = _Conn("c1"), _Conn("c2"), _Conn("c3"), _Conn(None, "host")
    for conn in (c1, c2, c3, host):
        room.activate(conn)
    for gb in ("g1", "g2", "g3"):
        room.set_group(gb, "c1", state(1))
    room.set_group("g1", "c2", state(2))
    room.set_group("g4", "room", {**state(3), "scope": "room"})
    frames = room.group_frames(now=10.0)
    got: dict[object, list[dict[str, Any]]] = {}
    for frame, targets in frames:  # targets are Members: here the _Conns above
        payload = frame[4:] if frame[1] == 126 else frame[2:]
        groups = msgpack.unpackb(payload, raw=False)["st"]["groups"]
        for target in targets:
            got.setdefault(target, []).append(groups)
    assert got[c1] == [
        {
            "g1": {"c1": state(1)},
            "g2": {"c1": state(1)},
            "g3": {"c1": state(1)},
            "g4": {"room": {**state(3), "scope": "room"}},
        }
    ]
    assert got[c2] == [{"g1": {"c2": state(2)}, "g4": {"room": {**state(3), "scope": "room"}}}]
    assert got[c3] == [{"g4": {"room": {**state(3), "scope": "room"}}}]
    (everything,) = got[host]
    assert {(gb, g) for gb, groups in everything.items() for g in groups} == {
        ("g1", "c1"),
        ("g2", "c1"),
        ("g3", "c1"),
        ("g1", "c2"),
        ("g4", "room"),
    }
