"""Room repository on Redis/Valkey."""

from __future__ import annotations

from redis.asyncio import Redis

from livecore.rooms import Room
from livecore.store import keys
from livecore.store.replies import as_str

# Create-if-absent in one step: two hosts racing for one id cannot both win.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


class RoomStore:
    """Create and read rooms; ``lc:{room}:meta`` is a hash, ``lc:rooms`` a sorted index."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(_CREATE)

    async def create(self, room: Room) -> bool:
        """Store ``room``; False when a room with that id already exists."""
        flat: list[str] = []
        for field, value in room.to_hash().items():
            flat += [field, value]
        created = bool(await self._create(keys=[keys.room(room.id, "meta")], args=flat))
        if created:
            await self.redis.zadd(keys.ROOMS_INDEX, {room.id: room.created_at})
        return created

    async def get(self, room_id: str) -> Room | None:
        data = await self.redis.hgetall(keys.room(room_id, "meta"))
        if not data:
            return None
        return Room.from_hash({as_str(k): as_str(v) for k, v in data.items()})

    async def recent(self, limit: int = 50) -> list[str]:
        """Ids of the most recently created rooms, newest first."""
        ids = await self.redis.zrevrange(keys.ROOMS_INDEX, 0, limit - 1)
        return [as_str(i) for i in ids]

    async def recent_rooms(self, limit: int = 50) -> list[Room]:
        """The most recently created rooms, newest first: the index, then every
        room's hash in one pipelined round trip (two in all, whatever ``limit``)."""
        ids = await self.recent(limit)
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id in ids:
                pipe.hgetall(keys.room(room_id, "meta"))
            replies = await pipe.execute()
        return [
            Room.from_hash({as_str(k): as_str(v) for k, v in data.items()})
            for data in replies
            if data
        ]

    async def set_status(self, room_id: str, status: str) -> None:
        """Record the room's status (``live`` once its host publishes)."""
        key = keys.room(room_id, "meta")
        if await self.redis.exists(key):
            await self.redis.hset(key, "status", status)

    async def set_replay(self, room_id: str, url: str) -> None:
        """Record where the room's replay is (``""``: none any more)."""
        key = keys.room(room_id, "meta")
        if await self.redis.exists(key):
            await self.redis.hset(key, "replay", url)
