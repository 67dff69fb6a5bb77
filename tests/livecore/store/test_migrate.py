"""Moving a single Valkey from the pre-cluster key layout."""

from __future__ import annotations

from redis.asyncio.cluster import RedisCluster

from livecore.store import index
from livecore.store.bus import Bus
from livecore.store.client import StoreClient
from livecore.store.communities import REGISTRY, VERSION
from livecore.store.groupbuys import GroupBuyStore
from livecore.store.migrate import migrate
from livecore.store.room_meta import RoomStore


async def test_old_indexes_move_to_buckets(aredis: StoreClient) -> None:
    """Rooms, ended rooms, order rooms, deadlines and the registry move; old keys go;
    a second run moves nothing."""
    if isinstance(aredis, RedisCluster):
        assert await migrate(aredis) == 0  # a cluster never had the old layout
        return
    await aredis.zadd("lc:rooms", {f"r{i}": 100 + i for i in range(1200)})
    await aredis.zadd("lc:rooms:ended", {"r1": 50})
    await aredis.sadd("lc:orders:rooms", "r1", "r2")
    await aredis.zadd("lc:gb:deadlines", {"r1|gabc": 70})
    await aredis.hset("lc:communities", mapping={"c1": "{}"})
    await aredis.set("lc:communities:v", 4)
    assert await migrate(aredis) == 1200 + 1 + 2 + 1 + 1
    for old in ("lc:rooms", "lc:rooms:ended", "lc:orders:rooms", "lc:gb:deadlines",
                "lc:communities", "lc:communities:v"):  # fmt: skip
        assert not await aredis.exists(old)
    rooms = RoomStore(aredis)
    assert (await rooms.recent(2)) == ["r1199", "r1198"]
    assert await rooms.ended_before(60) == ["r1"]
    assert await GroupBuyStore(aredis, Bus(aredis)).due(70) == [("r1", "gabc")]
    assert await aredis.hget(REGISTRY, "c1") == b"{}" and int(await aredis.get(VERSION)) >= 1
    assert set(await index.SetIndex(aredis, index.ORDER_ROOMS).scan(1000)) <= {"r1", "r2"}
    assert await migrate(aredis) == 0
