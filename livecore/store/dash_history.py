"""A room's dashboard history: its figures sampled every few seconds, the last
``CAP`` kept, so the dashboard's charts open with the live so far.

- ``lc:{room}:dash:history`` (list): msgpack ``[at, viewers, likes, votes,
  members, items]`` samples, oldest first, trimmed to ``CAP`` in the same
  transaction that appends (bounded whatever the number of nodes).
- ``lc:{room}:dash:claim`` (string with a TTL): the node that set it takes the
  next sample; the others skip it until it expires, so a room gets one sample
  per step however many nodes hold its viewers.

Both keys carry the room's hash tag: they leave with the room (retention sweep).
"""

from __future__ import annotations

import msgpack

from livecore.store import keys
from livecore.store.client import StoreClient

#: Samples kept per room: an hour at one sample every 5 s.
CAP = 720
#: Fields of a sample, in order.
FIELDS = ("at", "viewers", "likes", "votes", "members", "items")


class DashboardHistory:
    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis

    async def claim(self, room: str, step_s: int) -> bool:
        """True for the one caller that takes the room's sample of this step."""
        return bool(await self.redis.set(keys.room(room, "dash:claim"), "1", nx=True, ex=step_s))

    async def add(self, room: str, sample: list[int], cap: int = CAP) -> None:
        """Append one sample (``FIELDS`` in order); only the last ``cap`` stay."""
        if len(sample) != len(FIELDS):
            raise ValueError(f"a sample has {len(FIELDS)} fields, not {len(sample)}")
        key = keys.room(room, "dash:history")
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(key, msgpack.packb(sample))
        pipe.ltrim(key, -cap, -1)
        await pipe.execute()

    async def read(self, room: str) -> list[list[int]]:
        """The room's samples, oldest first."""
        raw = await self.redis.lrange(keys.room(room, "dash:history"), 0, -1)
        out: list[list[int]] = []
        for item in raw:
            sample = msgpack.unpackb(item)
            if isinstance(sample, list) and len(sample) == len(FIELDS):
                out.append([int(v) for v in sample])
        return out
