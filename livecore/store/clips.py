"""Clip records on Redis/Valkey, bounded per room.

``lc:{room}:clips`` is a sorted set of clip ids by creation time and
``lc:{room}:clipdata`` a hash id → clip JSON. ``add`` is one script: store,
then drop the oldest past ``MAX_CLIPS_PER_ROOM`` and return their ids (the
caller deletes their files).
"""

from __future__ import annotations

from livecore.clips import MAX_CLIPS_PER_ROOM, Clip
from livecore.store import keys
from livecore.store.client import StoreClient

_ADD = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if over <= 0 then return {} end
local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
redis.call('HDEL', KEYS[2], unpack(old))
return old
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ClipStore:
    """Add, list, read and delete a room's clips."""

    def __init__(self, redis: StoreClient, cap: int = MAX_CLIPS_PER_ROOM) -> None:
        self.redis = redis
        self.cap = cap
        self._add = redis.register_script(_ADD)

    @staticmethod
    def _keys(room: str) -> list[str]:
        return [keys.room(room, "clips"), keys.room(room, "clipdata")]

    async def add(self, clip: Clip) -> list[str]:
        """Store ``clip``; returns the ids of older clips dropped to stay under the cap."""
        dropped = await self._add(
            keys=self._keys(clip.room), args=[clip.created_at, clip.id, clip.to_json(), self.cap]
        )
        return [_text(d) for d in dropped]

    async def get(self, room: str, clip: str) -> Clip | None:
        raw = await self.redis.hget(keys.room(room, "clipdata"), clip)
        return Clip.from_json(raw) if raw is not None else None

    async def list(self, room: str, limit: int = MAX_CLIPS_PER_ROOM) -> list[Clip]:
        """Newest first."""
        ids = await self.redis.zrevrange(keys.room(room, "clips"), 0, limit - 1)
        if not ids:
            return []
        raws = await self.redis.hmget(keys.room(room, "clipdata"), [_text(i) for i in ids])
        return [Clip.from_json(r) for r in raws if r is not None]

    async def delete(self, room: str, clip: str) -> bool:
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(keys.room(room, "clips"), clip)
        pipe.hdel(keys.room(room, "clipdata"), clip)
        removed, _ = await pipe.execute()
        return bool(removed)
