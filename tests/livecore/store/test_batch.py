"""The script batcher against a real Valkey: one round trip, scripts loaded on demand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

from livecore.store.batch import ScriptBatcher
from livecore.store.client import StoreClient, cluster_seeds, is_cluster_url


async def test_calls_of_one_turn_share_a_pipeline_and_keep_order(
    aredis: redis.asyncio.Redis,
) -> None:
    """100 concurrent INCRs through the batcher return 1..100 in submission order."""
    script = aredis.register_script("return redis.call('INCR', KEYS[1])")
    batcher = ScriptBatcher(aredis)
    replies = await asyncio.gather(*(batcher.call(script, ["n"], []) for _ in range(100)))
    assert replies == list(range(1, 101))


async def test_unknown_scripts_are_loaded_again(aredis: redis.asyncio.Redis) -> None:
    """After SCRIPT FLUSH (a restarted server) calls still succeed: loaded and rerun once."""
    script = aredis.register_script("return ARGV[1]")
    batcher = ScriptBatcher(aredis)
    assert await batcher.call(script, [], ["a"]) == b"a"
    await aredis.script_flush()
    assert await asyncio.gather(*(batcher.call(script, [], [str(i)]) for i in range(3))) == [
        b"0",
        b"1",
        b"2",
    ]


async def test_a_failing_script_fails_only_its_caller(aredis: redis.asyncio.Redis) -> None:
    """An error reply goes to that call's future; the others in the batch succeed."""
    good = aredis.register_script("return 1")
    bad = aredis.register_script("return redis.call('NOSUCHCOMMAND')")
    batcher = ScriptBatcher(aredis)
    results = await asyncio.gather(
        batcher.call(good, [], []), batcher.call(bad, [], []), return_exceptions=True
    )
    assert results[0] == 1 and isinstance(results[1], ResponseError)
    with pytest.raises(ResponseError):
        await batcher.call(bad, [], [])


async def test_a_batch_of_one_shard_costs_no_task_of_its_own(aredis: StoreClient) -> None:
    """A batch's round trip runs in the batcher's one task: on a cluster redis-py's
    pipeline would start a task per shard and gather them, two more loop turns per
    round trip, which a flash sale's opening rush pays at tens of ms a turn."""
    script = aredis.register_script("return redis.call('INCR', KEYS[1])")
    batcher = ScriptBatcher(aredis)
    assert await batcher.call(script, ["{r1}n"], []) == 1  # (the script is loaded)
    loop = asyncio.get_running_loop()
    tasks: list[str] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> asyncio.Task[Any]:
        tasks.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kw)

    loop.set_task_factory(counting)
    try:
        replies = await asyncio.gather(*(batcher.call(script, ["{r1}n"], []) for _ in range(5)))
    finally:
        loop.set_task_factory(None)
    assert replies == [2, 3, 4, 5, 6]
    # the batcher's send, and redis-py's timed write (which one Valkey's client pays too)
    assert [t for t in tasks if t != "AbstractConnection._send_packed_command"] == [
        "ScriptBatcher._send"
    ]


async def test_a_redirected_call_follows_the_shard_that_owns_its_slot(
    aredis: StoreClient,
) -> None:
    """With a stale slot map (the slot moved, a replica took over) the shard's MOVED
    reply sends the call on through redis-py's cluster pipeline: it runs once, where
    its slot lives, and the map is right again."""
    if not isinstance(aredis, RedisCluster):
        pytest.skip("MOVED is a cluster's")
    script = aredis.register_script("return redis.call('INCR', KEYS[1])")
    batcher = ScriptBatcher(aredis)
    key = "{r1}moved"
    owner = aredis.get_node_from_key(key)
    assert owner is not None
    other = next(n for n in aredis.get_primaries() if n.name != owner.name)
    await batcher.preload([script])
    aredis.nodes_manager.slots_cache[key_slot(key.encode())] = [other]  # stale on purpose
    assert await batcher.call(script, [key], []) == 1
    assert int(await owner.execute_command("GET", key)) == 1
    assert int(await batcher.call(script, [key], [])) == 2
    node = aredis.get_node_from_key(key)
    assert node is not None and node.name == owner.name


def _script_loads(url: str) -> int:
    """``SCRIPT LOAD`` calls so far, over every server of the store."""
    servers: list[redis.Redis] = []
    if is_cluster_url(url):
        seeds, password = cluster_seeds(url.partition("://")[2])
        servers = [redis.Redis(host=h, port=p, password=password) for h, p in seeds]
    else:
        servers = [redis.Redis.from_url(url)]
    total = 0
    for server in servers:
        stats = server.info("commandstats")
        total += int(stats.get("cmdstat_script|load", {}).get("calls", 0))
        server.close()
    return total


async def test_a_lost_script_is_loaded_once_for_every_batch_that_misses_it(
    aredis: StoreClient, redis_url: str
) -> None:
    """Five batches in flight that all find the script missing (a restarted server)
    share one ``SCRIPT LOAD``, and every call still gets its reply."""
    script = aredis.register_script("return ARGV[1]")
    batcher = ScriptBatcher(aredis, max_batch=1)  # one pipeline per call, all in flight
    before = _script_loads(redis_url)
    await aredis.script_load(script.script)
    one_load = _script_loads(redis_url) - before  # (a cluster loads it on every primary)
    # five connections open, so that the five batches below are all sent at once
    await asyncio.gather(*(batcher.call(script, ["{r1}k"], ["warm"]) for _ in range(5)))
    await aredis.script_flush()
    before = _script_loads(redis_url)
    replies = await asyncio.gather(*(batcher.call(script, ["{r1}k"], [str(i)]) for i in range(5)))
    assert replies == [b"0", b"1", b"2", b"3", b"4"]
    assert _script_loads(redis_url) - before == one_load


async def test_preloaded_scripts_are_on_every_server(aredis: StoreClient) -> None:
    """After :meth:`ScriptBatcher.preload` every server (every primary) has the scripts,
    so no first call pays a refused ``EVALSHA`` and a load in the middle of a rush."""
    scripts = [aredis.register_script(f"return {i}") for i in range(3)]
    await aredis.script_flush()
    await ScriptBatcher(aredis).preload(scripts)
    servers = aredis.get_primaries() if isinstance(aredis, RedisCluster) else [aredis]
    for server in servers:
        found = await server.execute_command("SCRIPT EXISTS", *(s.sha for s in scripts))
        assert list(found) == [1, 1, 1]
