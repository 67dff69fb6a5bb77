"""The store facade against a real Valkey: every script on every server at start."""

from __future__ import annotations

from redis.asyncio.cluster import RedisCluster

from livecore.store import flashsale_scripts, groupbuy_scripts
from livecore.store.client import StoreClient
from livecore.store.facade import Stores


async def test_preload_puts_every_stores_script_on_every_server(aredis: StoreClient) -> None:
    """``Stores.preload`` (a node's start) loads the scripts of every store, the hot ones
    of a flash sale and a group buy among them, on the server or every primary."""
    stores = Stores(aredis)
    shas = [s.sha for s in stores.scripts()]
    texts = {s.script for s in stores.scripts()}
    assert {flashsale_scripts.BUYS, flashsale_scripts.FINAL, groupbuy_scripts.JOIN} <= texts
    await aredis.script_flush()
    await stores.preload()
    servers = aredis.get_primaries() if isinstance(aredis, RedisCluster) else [aredis]
    for server in servers:
        assert list(await server.execute_command("SCRIPT EXISTS", *shas)) == [1] * len(shas)
