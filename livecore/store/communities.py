"""The community registry in Valkey, shared by all nodes.

``lc:{g/communities}`` maps id → JSON; ``lc:{g/communities}:v`` is bumped on every
change so nodes rebuild their in-memory H3 index only when it moved.
"""

from __future__ import annotations

import json

from livecore.communities import Community, CommunityIndex, parse_community
from livecore.store.client import StoreClient
from livecore.store.replies import as_str

# One hash tag for both, so the two-key transactions below run on one shard.
REGISTRY = "lc:{g/communities}"
VERSION = "lc:{g/communities}:v"


class CommunityStore:
    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self.index = CommunityIndex([])
        self._version = -1

    async def upsert(self, communities: list[Community]) -> None:
        if not communities:
            return
        mapping = {c.id: json.dumps(c.public(), ensure_ascii=False) for c in communities}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(REGISTRY, mapping=mapping)  # type: ignore[arg-type]
        pipe.incr(VERSION)
        await pipe.execute()

    async def delete(self, community_id: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(REGISTRY, community_id)
        pipe.incr(VERSION)
        removed, _ = await pipe.execute()
        return bool(removed)

    async def refresh(self) -> CommunityIndex:
        """The index, rebuilt if the registry changed since the last call."""
        version = int(await self.redis.get(VERSION) or 0)
        if version != self._version:
            raw = await self.redis.hgetall(REGISTRY)
            self.index = CommunityIndex(
                [parse_community(json.loads(as_str(v))) for v in raw.values()]
            )
            self._version = version
        return self.index
