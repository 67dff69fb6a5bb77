"""Room repository on Redis/Valkey."""

from __future__ import annotations

import secrets

import msgpack

from livecore.rooms import Room
from livecore.store import index, keys
from livecore.store.bus import EMIT_LUA, Bus, channel
from livecore.store.client import StoreClient
from livecore.store.index import ScoredIndex, bucket_key, bucket_of
from livecore.store.replies import as_str
from livecore.store.room_list import REV, RoomList, from_reply, summary_key

# Create-if-absent in one step: two hosts racing for one id cannot both win.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# Change one listed field of an existing room; its new revision and whole hash.
# An ended room stays ended: its status is not changed again (a publisher that
# raced the end cannot set it live).
# KEYS: meta | ARGV: field value
_SET = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[1] == 'status' and redis.call('HGET', KEYS[1], 'status') == 'ended' then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: meta media; ARGV: url stream. The replay of ``stream`` is offered only while
# that stream is the room's newest recording (``latest``, "stream|node", written as a
# recording starts): a replay finished after a newer stream began is a part of the live.
_SET_REPLAY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local latest = redis.call('HGET', KEYS[2], 'latest')
if latest and string.match(latest, '^([^|]*)') ~= ARGV[2] then return false end
redis.call('HSET', KEYS[1], 'replay', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: meta requests stream offset epoch
# ARGV: channel maxlen candidate now payload
_END = (
    EMIT_LUA
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'status') == 'ended' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'ended', 'ended_at', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('DEL', KEYS[2])
emit(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[5], ARGV[2], ARGV[3])
return redis.call('HGETALL', KEYS[1])
"""
)


class RoomStore:
    """Create and read rooms; ``lc:{room}:meta`` is a hash; the indexes across
    rooms are bucketed (:mod:`livecore.store.index`), the room list's summaries
    lie beside its buckets (:mod:`livecore.store.room_list`): every change of a
    listed field bumps the hash's ``rev`` and is then copied there."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self.index = ScoredIndex(redis, index.ROOMS)
        self.ended = ScoredIndex(redis, index.ENDED)
        self._create = redis.register_script(_CREATE)
        self._end = redis.register_script(_END)
        self._set = redis.register_script(_SET)
        self._set_replay = redis.register_script(_SET_REPLAY)
        self.listing = RoomList(redis)

    async def create(self, room: Room) -> bool:
        """Store ``room``; False when a room with that id already exists.

        The index entry goes first and only if absent (``NX``: a refused create
        leaves an existing room's place in the list alone); should the create
        then fail, the list skips the entry, as it skips any room without a hash.
        The list's summary goes last (a crash before it: the list reads the hash)."""
        flat: list[str] = [REV, "1"]
        for field, value in room.to_hash().items():
            flat += [field, value]
        await self.redis.zadd(self.index.key_of(room.id), {room.id: room.created_at}, nx=True)
        if not await self._create(keys=[keys.room(room.id, "meta")], args=flat):
            return False
        await self.listing.put(room.id, 1, room)
        return True

    async def get(self, room_id: str) -> Room | None:
        data = await self.redis.hgetall(keys.room(room_id, "meta"))
        if not data:
            return None
        return Room.from_hash({as_str(k): as_str(v) for k, v in data.items()})

    async def exists(self, room_id: str) -> bool:
        return bool(await self.redis.exists(keys.room(room_id, "meta")))

    async def recent(self, limit: int = 50) -> list[str]:
        """Ids of the most recently created rooms, newest first."""
        return await self.index.newest(limit)

    async def recent_rooms(self, limit: int = 50) -> list[Room]:
        """The most recently created rooms, newest first, in one round trip (one
        script per bucket, one pipeline; on a cluster the shards' side by side)."""
        return await self.listing.newest(limit)

    async def set_status(self, room_id: str, status: str) -> None:
        """Record the room's status (``live`` once its host publishes); an ended
        room's status stays ``ended``."""
        await self._set_field(room_id, "status", status)

    async def set_replay(self, room_id: str, url: str, stream: str | None = None) -> bool:
        """Record where the room's replay is (``""``: none any more). With ``stream`` (the
        recording the replay ends with) only while that stream is the room's newest
        recording; whether it was recorded."""
        if stream is None:
            await self._set_field(room_id, "replay", url)
            return True
        meta, media = keys.room(room_id, "meta"), keys.room(room_id, "media")
        changed = from_reply(await self._set_replay(keys=[meta, media], args=[url, stream]))
        if changed is None:
            return False
        await self.listing.put(room_id, *changed)
        return True

    async def _set_field(self, room_id: str, field: str, value: str) -> None:
        """Change a listed field of an existing room, then copy it to the list."""
        changed = from_reply(
            await self._set(keys=[keys.room(room_id, "meta")], args=[field, value])
        )
        if changed is not None:
            await self.listing.put(room_id, *changed)

    async def end(self, room_id: str, now: int, bus: Bus) -> int:
        """End the room once (1; 0 already ended; -1 no such room): status ``ended``,
        pending co-stream requests dropped and a ``room_ended`` event in one atomic
        step; then listed for the retention sweep (after the script, so that only
        an ended room is ever forgotten; a crash in between keeps the room's data
        past its retention, it never loses it)."""
        payload = msgpack.packb({"t": "room_ended", "at": now})
        keys_ = [keys.room(room_id, "meta"), keys.room(room_id, "costream:requests"),
                 *bus.emit_keys(room_id)]  # fmt: skip
        args = [channel(room_id), bus.history_max, secrets.token_hex(8), now, payload]
        reply = await self._end(keys=keys_, args=args)
        ended = from_reply(reply)
        if ended is None:
            return int(reply)
        await self.ended.add(room_id, now)
        await self.listing.put(room_id, *ended)
        return 1

    async def ended_before(self, when: int, limit: int = 100) -> list[str]:
        """Rooms that ended at or before ``when`` (oldest first)."""
        return await self.ended.upto(when, limit)

    async def forget(self, room_id: str) -> int:
        """Remove every key of a room (its hash tag keeps them in one slot) and its index
        entries; returns how many keys went."""
        gone = 0
        async for key in self.redis.scan_iter(match=f"{keys.PREFIX}:{{{room_id}}}:*", count=500):
            gone += int(await self.redis.unlink(key))
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(self.index.key_of(room_id), room_id)
        pipe.hdel(summary_key(bucket_of(room_id)), room_id)
        pipe.zrem(self.ended.key_of(room_id), room_id)
        pipe.srem(bucket_key(index.ORDER_ROOMS, bucket_of(room_id)), room_id)
        pipe.zrem(bucket_key(index.LEASES, bucket_of(room_id)), room_id)
        await pipe.execute()
        return gone
