"""A room's shared engagement on the real Valkey: the lease, people per bucket, controls."""

from __future__ import annotations

from livecore.engagement import Control, ControlKind, Lease, bucket
from livecore.store.client import StoreClient
from livecore.store.engagement import EngagementStore


async def test_nothing_is_stored_without_a_lease(aredis: StoreClient) -> None:
    """A room nobody records: the flush is refused and leaves no key."""
    store = EngagementStore(aredis)
    assert await store.flush("quiet", {(10, "comment"): {"u1"}}) is False
    assert await store.counts("quiet", 10, 11, ["comment"]) == [{}]
    assert await store.lease("quiet") is None


async def test_people_from_every_node_count_once(aredis: StoreClient) -> None:
    """Two nodes flush the same bucket; a user seen by both is one person."""
    store = EngagementStore(aredis)
    lease = Lease("a", 1_700_000_000.5, 1.0, "1700000000-abcdef")
    await store.hold("r1", lease, 10)
    assert await store.lease("r1") == lease
    assert await store.flush("r1", {(5, "comment"): {"u1", "u2"}, (5, "like"): {"u1"}})
    assert await store.flush("r1", {(5, "comment"): {"u2", "u3"}, (6, "like"): ["u9"]})
    rows = await store.counts("r1", 5, 7, ["comment", "like", "vote"])
    assert rows == [{"comment": 3, "like": 1}, {"like": 1}]
    await store.release("r1", Lease("b", 1.0, 1.0, "x"))  # not ours: kept
    assert await store.lease("r1") == lease
    await store.release("r1", lease)
    assert await store.lease("r1") is None


async def test_controls_in_order_after_an_id(aredis: StoreClient) -> None:
    """Controls are read after the last id seen, oldest first; a damaged entry is skipped."""
    store = EngagementStore(aredis)
    start = await store.last_control_id("r2")
    await store.control("r2", Control(ControlKind.PIN, 100.5, "脐橙"))
    await aredis.xadd("lc:{r2}:hl:controls", {"c": "not json"})
    await store.control("r2", Control(ControlKind.MARK, 101.0))
    after, got = await store.controls("r2", start)
    assert got == [Control(ControlKind.PIN, 100.5, "脐橙"), Control(ControlKind.MARK, 101.0)]
    assert await store.controls("r2", after) == (after, [])
    assert bucket(1_700_000_000.5, 6) == 10_200_000_003
