"""The room list (``GET /api/rooms``) in one round trip.

Beside each bucket ``lc:{i/rooms/<b>}`` of the rooms index (room id →
created_at) lies, under the same hash tag and so in the same slot, a hash
``lc:{i/rooms/<b>}:list``: room id → ``<rev>|<room JSON>``, the fields the
list shows, copied from the room's ``meta`` hash at its revision ``rev``. One
script per bucket reads the bucket's newest ids with their summaries; the 16
calls go in one pipeline (on a cluster redis-py sends one pipeline per shard,
side by side: one round trip in time).

A summary is written after every change of a listed field (creation, status,
replay), by a separate script on the bucket's slot (a room's script may touch
only its own slot): it keeps a summary only for a room the bucket lists, and
only when it is newer (a higher ``rev``) than the one there, so two nodes
copying one room in either order leave the newer copy. A crash between the
room's change and the copy leaves the list one change behind until the
room's next change.

A room the list meets without a summary (a store written before summaries, or
a crash between a room's creation and its first copy) is read from its
``meta`` hash in a second round trip and its summary written then, so it
costs that once; an index entry whose room does not exist (a crash between
the entry and the room's creation) gets the empty summary ``0|``, which the
list skips and any real copy (``rev`` ≥ 1) replaces.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Sequence
from typing import Any

from livecore.rooms import Room
from livecore.store import index, keys
from livecore.store.client import StoreClient
from livecore.store.index import BUCKETS, bucket_key, bucket_of
from livecore.store.replies import as_str

#: The meta hash's field that counts its changes of listed fields.
REV = "rev"

# KEYS: bucket summaries | ARGV: limit
# Returns id, score, summary ('' when there is none) for the bucket's newest ids.
_LIST = """
local found = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
if #found == 0 then return out end
local ids = {}
for i = 1, #found, 2 do ids[#ids + 1] = found[i] end
local summaries = redis.call('HMGET', KEYS[2], unpack(ids))
for i, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = found[2 * i]
  out[#out + 1] = summaries[i] or ''
end
return out
"""

# KEYS: bucket summaries | ARGV: room rev summary ('' = no such room)
_PUT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and tonumber(string.match(current, '^(%d+)|')) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
"""


def summary_key(bucket: int) -> str:
    """``lc:{i/rooms/<bucket>}:list``: the summaries beside the bucket (same slot)."""
    return f"{bucket_key(index.ROOMS, bucket)}:list"


def summary_keys(room_id: str) -> list[str]:
    """The bucket that lists ``room_id`` and its summaries."""
    bucket = bucket_of(room_id)
    return [bucket_key(index.ROOMS, bucket), summary_key(bucket)]


def encode(room: Room) -> str:
    return json.dumps(room.to_hash(), ensure_ascii=False, separators=(",", ":"))


def decode(summary: str) -> Room | None:
    """The room in ``<rev>|<JSON>``; None for the empty summary of no room."""
    body = summary.partition("|")[2]
    return Room.from_hash(json.loads(body)) if body else None


def from_reply(reply: Any) -> tuple[int, Room] | None:
    """A meta hash as a script's HGETALL gives it (a flat list), as (rev, room)."""
    if not isinstance(reply, list) or not reply:
        return None
    flat = [as_str(item) for item in reply]
    data = dict(zip(flat[::2], flat[1::2], strict=True))
    return int(data.get(REV, "0")), Room.from_hash(data)


class RoomList:
    """The newest rooms with their listed fields, and the copies that keep them."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._put = redis.register_script(_PUT)

    async def put(self, room_id: str, rev: int, room: Room | None) -> None:
        """Copy ``room`` (at revision ``rev`` of its meta hash; None: no such room)."""
        summary = encode(room) if room is not None else ""
        await self._put(keys=summary_keys(room_id), args=[room_id, rev, summary])

    async def newest(self, limit: int) -> list[Room]:
        """The ``limit`` most recently created rooms, newest first; rooms the index
        lists that do not exist are skipped (as their place in the newest ``limit``)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in range(BUCKETS):
            # EVAL, not EVALSHA: one round trip even on a server that has not
            # seen the script (restarted, or a replica that took over).
            keys_ = [bucket_key(index.ROOMS, bucket), summary_key(bucket)]
            pipe.execute_command("EVAL", _LIST, 2, *keys_, limit)
        replies = await pipe.execute()
        top = list(itertools.islice(heapq.merge(*map(_entries, replies), key=_newest), limit))
        missing = [room_id for room_id, _, summary in top if not summary]
        copied = await self._copy(missing) if missing else {}
        rooms = [decode(summary) if summary else copied.get(room_id) for room_id, _, summary in top]
        return [room for room in rooms if room is not None]

    async def _copy(self, room_ids: Sequence[str]) -> dict[str, Room | None]:
        """Read rooms without a summary from their meta hashes and write their summaries."""
        pipe = self.redis.pipeline(transaction=False)
        for room_id in room_ids:
            pipe.hgetall(keys.room(room_id, "meta"))
        replies = await pipe.execute()
        found: dict[str, Room | None] = {}
        pipe = self.redis.pipeline(transaction=False)
        for room_id, data in zip(room_ids, replies, strict=True):
            fields = {as_str(k): as_str(v) for k, v in data.items()}
            room = Room.from_hash(fields) if fields else None
            found[room_id] = room
            summary = encode(room) if room is not None else ""
            rev = int(fields.get(REV, "0"))
            pipe.execute_command("EVAL", _PUT, 2, *summary_keys(room_id), room_id, rev, summary)
        await pipe.execute()
        return found


def _entries(reply: list[Any]) -> list[tuple[str, float, str]]:
    flat = [as_str(item) for item in reply]
    return [(flat[i], float(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]


def _newest(entry: tuple[str, float, str]) -> float:
    return -entry[1]
