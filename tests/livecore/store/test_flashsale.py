"""Flash-sale taps on a real Valkey: a turn's taps of one sale in one call, in order."""

from __future__ import annotations

import asyncio
import threading

import msgpack
from redis.asyncio.cluster import RedisCluster

from livecore import flashsale
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.client import StoreClient, open_store
from livecore.store.flashsale import FlashSaleStore

ROOM = "r1"
T0 = 1_900_000_000


async def started_sale(client: StoreClient, stock: int, limit: int) -> tuple[FlashSaleStore, str]:
    """A batched store and a sale started on it at T0: the store and the sale's id."""
    batcher = ScriptBatcher(client)
    store = FlashSaleStore(client, Bus(client, batcher=batcher), batcher)
    fields = {"price_cents": 990, "stock": stock, "limit": limit, "duration_s": 60}
    started = await store.start(ROOM, flashsale.parse_spec(fields, "p", 1990, now=T0), T0)
    assert not isinstance(started, str)
    return store, started[0]


async def _evalsha_calls(client: StoreClient) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_a_turns_taps_are_one_call_decided_in_order(redis_url: str) -> None:
    """Taps made in one loop turn share one script call and are decided in the order they
    were made, as one call each would be: the stock goes to the first buyers, a retried
    key is answered as its first tap, the limit holds inside the call, sold out once."""
    client = await open_store(redis_url)
    try:
        store, fid = await started_sale(client, stock=10, limit=1)
        assert (await store.buy(ROOM, fid, "first", 1, "k", "", T0)).code == 1  # script loaded
        before = await _evalsha_calls(client)
        taps = [("u0", "k1"), ("u0", "k1"), ("u0", "k2")]
        taps += [(f"u{i}", "k1") for i in range(1, 20)]
        results = await asyncio.gather(
            *(store.buy(ROOM, fid, user, 1, key, "", T0) for user, key in taps)
        )
        codes = [r.code for r in results]
        # u0 buys, its retry is answered as bought (code 0), its second key passes the limit
        assert codes[:3] == [1, 0, -5] and results[1].mine == 1
        assert codes[3:] == [1] * 8 + [-4] * 11  # u1..u8 take the last 8 units, in order
        assert [r.state.sold for r in results[3:11] if r.state] == list(range(3, 11))
        assert results[10].state is not None and results[10].state.status == "sold_out"
        if not isinstance(client, RedisCluster):  # (commandstats are per server)
            assert await _evalsha_calls(client) == before + 1
        events = [msgpack.unpackb(p) for _, p in await store.bus.history(ROOM, 0)]
        assert [e["t"] for e in events].count("flash_sold_out") == 1
        assert await store.bought(ROOM, fid, "u0") == 1
        assert await store.bought(ROOM, fid, "u9") == 0
    finally:
        await client.aclose()


async def test_a_final_sale_is_read_in_one_call_without_a_thread(redis_url: str) -> None:
    """A sold-out sale reads back whole (state, holders, every bought key) in one script
    call: not a cluster MULTI pipeline, whose commands redis-py's cluster client queues
    each on a thread of its own while the node's loop waits; a sale that still sells
    reads as None."""
    client = await open_store(redis_url)
    threads: list[int] = []
    try:
        store, fid = await started_sale(client, stock=2, limit=2)
        assert (await store.buy(ROOM, fid, "a", 1, "k1", "", T0)).code == 1
        assert await store.final(ROOM, fid) is None  # one unit left: it still sells
        assert (await store.buy(ROOM, fid, "b", 1, "k1", "", T0)).code == 1
        threading.setprofile(lambda *_: threads.append(threading.get_ident()))
        try:
            read = await store.final(ROOM, fid)
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]
        assert read is not None
        state, holders, keys = read
        assert (state.sold, state.stock, state.status) == (2, 2, "sold_out")
        assert holders == {"a": 1, "b": 1} and keys == {"a|k1", "b|k1"}
        assert threads == []
        assert await store.final(ROOM, "fnosuch") is None
    finally:
        await client.aclose()
