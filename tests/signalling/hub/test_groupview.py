"""Group buys as clients see them: the spec cache and its shared read."""

from __future__ import annotations

import asyncio

from livecore.clock import SystemClock
from livecore.config import Settings
from livecore.groupbuy import parse_spec
from livecore.store.client import StoreClient
from livecore.store.facade import Stores
from signalling.hub.context import Services
from signalling.hub.groupview import spec_of


async def _spec_reads(aredis: StoreClient) -> int:
    stats = await aredis.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


async def test_joins_that_miss_together_share_one_read(aredis: StoreClient) -> None:
    """50 joins arriving as a group buy opens read its spec once; later ones none."""
    stores = Stores(aredis)
    node = Services(stores, Settings(), SystemClock())
    spec = parse_spec(
        {"product": "peaches", "price_cents": 990, "target": 3, "duration_s": 600}, now=1
    )
    gid = await stores.groupbuys.open("r1", spec, 0, 0)
    before = await _spec_reads(aredis)
    found = await asyncio.gather(*(spec_of(node, "r1", gid) for _ in range(50)))
    assert await _spec_reads(aredis) == before + 1
    assert {s.product for s in found if s is not None} == {"peaches"} and None not in found
    assert await spec_of(node, "r1", gid) is found[0]
    assert await spec_of(node, "r1", "gnope") is None
    assert await _spec_reads(aredis) == before + 2
    assert not node.spec_reads
