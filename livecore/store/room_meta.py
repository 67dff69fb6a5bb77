"""Room repository on Redis/Valkey."""

from __future__ import annotations

import secrets

import msgpack
from redis.asyncio import Redis

from livecore.rooms import Room
from livecore.store import keys
from livecore.store.bus import EMIT_LUA, Bus, channel
from livecore.store.replies import as_str

# Create-if-absent in one step: two hosts racing for one id cannot both win.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


# KEYS: meta ended-index requests stream offset epoch
# ARGV: channel maxlen candidate room now payload
_END = (
    EMIT_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'status') == 'ended' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'ended', 'ended_at', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
redis.call('DEL', KEYS[3])
emit(KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[6], ARGV[2], ARGV[3])
return 1
"""
)

#: Rooms that ended, scored by when: the retention sweep reads it (global, bounded by
#: the sweep, which removes each room once its keys are gone).
ENDED_INDEX = f"{keys.PREFIX}:rooms:ended"


class RoomStore:
    """Create and read rooms; ``lc:{room}:meta`` is a hash, ``lc:rooms`` a sorted index."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._create = redis.register_script(_CREATE)
        self._end = redis.register_script(_END)

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

    async def end(self, room_id: str, now: int, bus: Bus) -> int:
        """End the room once (1; 0 already ended; -1 no such room): status ``ended``,
        pending co-stream requests dropped, listed for the retention sweep and a
        ``room_ended`` event, in one atomic step."""
        payload = msgpack.packb({"t": "room_ended", "at": now})
        keys_ = [keys.room(room_id, "meta"), ENDED_INDEX,
                 keys.room(room_id, "costream:requests"), *bus.emit_keys(room_id)]  # fmt: skip
        args = [channel(room_id), bus.history_max, secrets.token_hex(8), room_id, now, payload]
        return int(await self._end(keys=keys_, args=args))

    async def ended_before(self, when: int, limit: int = 100) -> list[str]:
        """Rooms that ended at or before ``when`` (oldest first)."""
        ids = await self.redis.zrangebyscore(ENDED_INDEX, 0, when, start=0, num=limit)
        return [as_str(i) for i in ids]

    async def forget(self, room_id: str) -> int:
        """Remove every key of a room (its hash tag keeps them in one slot) and its index
        entries; returns how many keys went."""
        gone = 0
        async for key in self.redis.scan_iter(match=f"{keys.PREFIX}:{{{room_id}}}:*", count=500):
            gone += int(await self.redis.unlink(key))
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(keys.ROOMS_INDEX, room_id)
        pipe.zrem(ENDED_INDEX, room_id)
        pipe.srem(keys.ORDER_ROOMS, room_id)
        await pipe.execute()
        return gone
