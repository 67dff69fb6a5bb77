"""The store client: URLs, seed lists, slot grouping and the cluster gate."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from livecore.store import keys
from livecore.store.client import (
    Gate,
    StoreClient,
    by_slot,
    cluster_seeds,
    describe,
    is_cluster_url,
    open_store,
    shard_groups,
)


def test_cluster_urls_and_seed_lists() -> None:
    """redis+cluster:// names a cluster; its seeds and password are parsed out."""
    assert is_cluster_url("redis+cluster://:pw@127.0.0.1:7000")
    assert is_cluster_url("rediss+cluster://h:1") and not is_cluster_url("redis://h:1/0")
    assert describe("unix:///run/v.sock") == "valkey"
    seeds, password = cluster_seeds(":p%40ss@127.0.0.1:7000, 127.0.0.1:7001,[::1]:7002")
    assert seeds == [("127.0.0.1", 7000), ("127.0.0.1", 7001), ("::1", 7002)]
    assert password == "p@ss"
    assert cluster_seeds("127.0.0.1:7000") == ([("127.0.0.1", 7000)], None)
    with pytest.raises(ValueError, match="not host:port"):
        cluster_seeds(":pw@127.0.0.1")


async def test_keys_group_by_slot_only_on_a_cluster(aredis: StoreClient) -> None:
    """One group on a single server; one group per hash slot on a cluster."""
    names = [keys.room("a", "orders"), keys.room("b", "orders"), keys.room("a", "events")]
    groups = by_slot(aredis, names)
    if isinstance(aredis, RedisCluster):
        assert [len({key_slot(n.encode()) for n in group}) for group in groups] == [1, 1]
        assert sorted(n for group in groups for n in group) == sorted(names)
    else:
        assert groups == [names]
    assert by_slot(aredis, []) == []


async def test_calls_group_by_shard(aredis: StoreClient) -> None:
    """Calls whose keys live on one shard stay together; a server is one shard."""
    rooms = [f"room-{i}" for i in range(40)]
    calls = [[keys.room(room, "meta")] for room in rooms]
    groups = shard_groups(aredis, calls, key=lambda call: call)
    assert sorted(k for group in groups for call in group for k in call) == sorted(
        k for call in calls for k in call
    )
    if isinstance(aredis, RedisCluster):
        assert len(groups) == 3  # 40 rooms cover the three primaries
        for group in groups:
            owners = {aredis.get_node_from_key(call[0]).name for call in group}  # type: ignore[union-attr]
            assert len(owners) == 1
    else:
        assert len(groups) == 1


async def test_a_full_pool_makes_commands_wait(redis_url: str) -> None:
    """300 concurrent commands over at most 4 connections per server all succeed:
    they wait for a free connection (on a cluster too) instead of failing."""
    client = await open_store(redis_url, max_connections=4)
    try:
        replies = await asyncio.gather(*(client.incr(keys.room("wait", "n")) for _ in range(300)))
    finally:
        await client.aclose()
    assert sorted(replies) == list(range(1, 301))


async def test_gate_bounds_what_is_in_flight() -> None:
    """At most `limit` holders at once; a holder re-entering does not wait for itself."""
    gate = Gate(2)
    inside = peak = 0

    async def work() -> None:
        nonlocal inside, peak
        async with gate.hold():
            inside += 1
            peak = max(peak, inside)
            async with gate.hold():  # a redirected command re-sent under the same permit
                await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(10))), 5)
    assert peak == 2
