"""A product's 讲解 clips on the real Valkey: ranked by clicks, 3 kept, the newest always."""

from __future__ import annotations

from livecore.store.client import StoreClient
from livecore.store.explains import ExplainStore


async def test_ranked_by_clicks_and_capped(aredis: StoreClient) -> None:
    """The least clicked of the older clips leaves past 3; a new clip is always kept; clicks
    count only for ranked clips; another product's list is apart."""
    store = ExplainStore(aredis)
    assert await store.add("r1", "橙子", "a" * 12, 1_700_000_000) == []
    assert await store.add("r1", "橙子", "b" * 12, 1_700_000_100) == []
    assert await store.add("r1", "橙子", "c" * 12, 1_700_000_200) == []
    assert await store.click("r1", "橙子", "a" * 12) == 1
    assert await store.click("r1", "橙子", "a" * 12) == 2
    assert await store.click("r1", "橙子", "c" * 12) == 1
    assert await store.click("r1", "橙子", "z" * 12) is None  # not ranked: nothing changes
    assert await store.ranked("r1", "橙子") == [("a" * 12, 2), ("c" * 12, 1), ("b" * 12, 0)]
    # A fourth: b (0 clicks) leaves, though the new one has no click yet.
    assert await store.add("r1", "橙子", "d" * 12, 1_700_000_300) == ["b" * 12]
    assert [c for c, _ in await store.ranked("r1", "橙子")] == ["a" * 12, "c" * 12, "d" * 12]
    assert await store.click("r1", "橙子", "b" * 12) is None
    assert await store.ranked("r1", "苹果") == []
    await store.add("r1", "苹果", "e" * 12, 1_700_000_400)
    assert await store.ranked("r1", "苹果") == [("e" * 12, 0)]
    assert len(await store.ranked("r1", "橙子")) == 3


async def test_ties_favour_the_newer_clip(aredis: StoreClient) -> None:
    """Equal clicks: the older one leaves first."""
    store = ExplainStore(aredis, per_product=2)
    await store.add("r2", "p", "1" * 12, 1_700_000_000)
    await store.add("r2", "p", "2" * 12, 1_700_000_500)
    assert await store.add("r2", "p", "3" * 12, 1_700_001_000) == ["1" * 12]
