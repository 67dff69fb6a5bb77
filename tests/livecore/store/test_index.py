"""Indexes across rooms, spread over 16 buckets (16 slots of a cluster)."""

from __future__ import annotations

from redis.crc import key_slot

from livecore.store.client import StoreClient
from livecore.store.index import BUCKETS, ScoredIndex, SetIndex, bucket_key, bucket_of


def test_buckets_spread_over_slots() -> None:
    """Each bucket is its own hash tag; members spread over all of them."""
    slots = {key_slot(bucket_key("rooms", b).encode()) for b in range(BUCKETS)}
    assert len(slots) == BUCKETS
    assert {bucket_of(f"room-{i}") for i in range(500)} == set(range(BUCKETS))
    assert "{" not in bucket_key("rooms", 3).split("{i/")[0][:-1]


async def test_scored_index_merges_its_buckets(aredis: StoreClient) -> None:
    """newest() and upto() read every bucket and merge by score, limit respected."""
    index = ScoredIndex(aredis, "rooms")
    for i in range(100):
        await index.add(f"room-{i}", 1000 + i)
    assert await index.newest(5) == [f"room-{i}" for i in (99, 98, 97, 96, 95)]
    assert await index.upto(1004, 50) == [f"room-{i}" for i in range(5)]
    assert await index.upto(2000, 7) == [f"room-{i}" for i in range(7)]
    await index.remove("room-99", "room-0")
    assert (await index.newest(1), (await index.upto(2000, 1))) == (["room-98"], ["room-1"])
    assert await ScoredIndex(aredis, "ended").newest(3) == []


async def test_set_index_scan_visits_every_member(aredis: StoreClient) -> None:
    """Successive scans walk all buckets and start over."""
    rooms = SetIndex(aredis, "orders")
    members = {f"room-{i}" for i in range(300)}
    for member in members:
        await rooms.add(member)
    seen: set[str] = set()
    for _ in range(BUCKETS * 4):
        seen.update(await rooms.scan(50))
    assert seen == members
    await rooms.remove("room-1")
    again: set[str] = set()
    for _ in range(BUCKETS * 4):
        again.update(await rooms.scan(50))
    assert again == members - {"room-1"}
