"""The script batcher against a real Valkey: one round trip, scripts loaded on demand."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from redis.exceptions import ResponseError

from livecore.store.batch import ScriptBatcher


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
