"""Moving a single Valkey's data from the key layout before cluster support.

Up to then the indexes across rooms were single keys (``lc:rooms``,
``lc:rooms:ended``, ``lc:orders:rooms``, ``lc:gb:deadlines``) and the
community registry had no hash tag. :func:`migrate` moves them, in windows
of 500 members, to the bucketed indexes and the tagged registry, then deletes
the old keys; it is idempotent and does nothing on a store that has none
(every cluster, every new store). A node runs it at start; two nodes doing it
at once only write the same members twice.

The room list's summaries (:mod:`livecore.store.room_list`) are not moved
here: the list copies a room it meets without one from the room's hash, once.
"""

from __future__ import annotations

from redis.asyncio.cluster import RedisCluster

from livecore.store import index
from livecore.store.client import StoreClient
from livecore.store.communities import REGISTRY, VERSION
from livecore.store.index import ScoredIndex, SetIndex
from livecore.store.replies import as_str

WINDOW = 500
SCORED = {"lc:rooms": index.ROOMS, "lc:rooms:ended": index.ENDED, "lc:gb:deadlines": index.DUE}
SETS = {"lc:orders:rooms": index.ORDER_ROOMS}
COMMUNITIES = ("lc:communities", "lc:communities:v")


async def migrate(redis: StoreClient) -> int:
    """Move every old-layout key; returns how many members (and keys) moved."""
    if isinstance(redis, RedisCluster):  # clusters only ever had the new layout
        return 0
    moved = 0
    for old, name in SCORED.items():
        target = ScoredIndex(redis, name)
        cursor = 0
        while await redis.exists(old):
            cursor, pairs = await redis.zscan(old, cursor, count=WINDOW)
            for member, score in pairs:
                await redis.zadd(target.key_of(as_str(member)), {as_str(member): score}, nx=True)
                moved += 1
            if cursor == 0:
                await redis.delete(old)
    for old, name in SETS.items():
        sets = SetIndex(redis, name)
        cursor = 0
        while await redis.exists(old):
            cursor, members = await redis.sscan(old, cursor, count=WINDOW)
            for member in members:
                await sets.add(as_str(member))
                moved += 1
            if cursor == 0:
                await redis.delete(old)
    registry = COMMUNITIES[0]
    if await redis.exists(registry) and not await redis.exists(REGISTRY):
        raw = await redis.hgetall(registry)
        if raw:
            await redis.hset(REGISTRY, mapping=dict(raw))  # type: ignore[arg-type]
        await redis.incr(VERSION)
        moved += len(raw)
    for old in COMMUNITIES:
        await redis.delete(old)
    return moved
