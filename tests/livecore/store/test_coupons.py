"""Coupon-task facts on a real Valkey: kept across a buyer's connections, bounded."""

from __future__ import annotations

from livecore.store import coupons, keys
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.client import open_store
from livecore.store.coupons import CouponStore

ROOM = "r1"


async def test_a_buyers_task_facts_outlive_their_connection(redis_url: str) -> None:
    """The earliest arrival of any connection is kept; a comment, once made, stays;
    past the cap a new buyer's facts are not kept (the others' still are)."""
    client = await open_store(redis_url)
    try:
        batcher = ScriptBatcher(client)
        store = CouponStore(client, Bus(client, batcher=batcher), batcher)
        facts = keys.room(ROOM, "coupon:tasks")
        await client.delete(facts)
        assert await store.task_facts(ROOM, "u1") == (None, False)
        await store.remember(ROOM, "u1", 1_000, False)
        await store.remember(ROOM, "u1", 1_300, True)  # a later connection that commented
        assert await store.task_facts(ROOM, "u1") == (1_000, True)
        await store.remember(ROOM, "u1", 900, False)  # an older one, closing late
        assert await store.task_facts(ROOM, "u1") == (900, True)
        filler = {
            f"w:x{i}": 1 for i in range(2 * coupons.MAX_TASK_FACTS - await client.hlen(facts))
        }
        for start in range(0, len(filler), 20_000):
            chunk = dict(list(filler.items())[start : start + 20_000])
            await client.hset(facts, mapping=chunk)
        await store.remember(ROOM, "u2", 1_000, True)
        assert await store.task_facts(ROOM, "u2") == (None, False)
        await store.remember(ROOM, "u1", 800, False)
        assert await store.task_facts(ROOM, "u1") == (800, True)
        await client.delete(facts)
    finally:
        await client.aclose()
