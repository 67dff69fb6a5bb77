"""LocalRoom bookkeeping without a network: batches, group pushes, closing group buys."""

from __future__ import annotations

import msgpack

from livecore.sequencer import Sequencer
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
