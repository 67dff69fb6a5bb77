"""Global indexes spread over 16 buckets, so none is one hot key of a cluster.

A room's own keys share its hash tag ``{room}`` and so one slot; an index
across rooms (rooms by creation, ended rooms, rooms with orders, group-buy
deadlines) cannot. Each index is 16 keys ``lc:{i/<name>/<bucket>}``, the
bucket chosen by CRC-32 of the member, so its writes spread over up to 16
slots (over every shard of a cluster of up to 16 primaries) and a reader
visits all 16 in one pipeline. ``/`` is not in the room id alphabet: no room's
tag can equal an index's.

Index writes are separate commands, never inside a room's script (a script
may only touch keys of one slot). Each index says which side of its room's
script it is written on, so that a crash in between leaves a harmless
superset (an entry the reader finds stale and drops), never a lost entry.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterable
from typing import Any

from livecore.store.client import StoreClient
from livecore.store.keys import PREFIX
from livecore.store.replies import as_str

BUCKETS = 16

#: The indexes: rooms by creation (the room list), ended rooms by end (the
#: retention sweep), rooms that have orders (the webhook forwarder), open group
#: buys by deadline as ``room|gid`` (every node's deadline sweep), live rooms by the
#: end of their lease (every node's lease sweep, :mod:`livecore.store.leases`).
ROOMS = "rooms"
ENDED = "ended"
ORDER_ROOMS = "orders"
DUE = "due"
LEASES = "leases"


def bucket_of(member: str) -> int:
    return zlib.crc32(member.encode()) % BUCKETS


def bucket_key(name: str, bucket: int) -> str:
    return f"{PREFIX}:{{i/{name}/{bucket}}}"


class ScoredIndex:
    """Members with a score (a time), e.g. rooms by creation or by end, deadlines."""

    def __init__(self, redis: StoreClient, name: str) -> None:
        self.redis = redis
        self.name = name
        self.keys = [bucket_key(name, b) for b in range(BUCKETS)]

    def key_of(self, member: str) -> str:
        return self.keys[bucket_of(member)]

    async def add(self, member: str, score: float) -> None:
        await self.redis.zadd(self.key_of(member), {member: score})

    async def remove(self, *members: str) -> None:
        if not members:
            return
        pipe = self.redis.pipeline(transaction=False)
        for member in members:
            pipe.zrem(self.key_of(member), member)
        await pipe.execute()

    async def upto(self, score: float, limit: int) -> list[str]:
        """Up to ``limit`` members scored at most ``score``, lowest first."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrangebyscore(key, "-inf", score, start=0, num=limit, withscores=True)
        merged = heapq.merge(*_pairs(await pipe.execute()), key=lambda pair: pair[1])
        return [member for member, _ in list(merged)[:limit]]

    async def newest(self, limit: int) -> list[str]:
        """Up to ``limit`` members with the highest scores, highest first."""
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys:
            pipe.zrevrange(key, 0, limit - 1, withscores=True)
        merged = heapq.merge(*_pairs(await pipe.execute()), key=lambda pair: -pair[1])
        return [member for member, _ in list(merged)[:limit]]


class SetIndex:
    """Members without order (rooms that have orders), read in windows."""

    def __init__(self, redis: StoreClient, name: str) -> None:
        self.redis = redis
        self.name = name
        self.keys = [bucket_key(name, b) for b in range(BUCKETS)]
        self._bucket = 0
        self._cursor = 0

    async def add(self, member: str) -> None:
        await self.redis.sadd(self.keys[bucket_of(member)], member)

    async def remove(self, member: str) -> None:
        await self.redis.srem(self.keys[bucket_of(member)], member)

    async def scan(self, count: int) -> list[str]:
        """About ``count`` members; successive calls walk every bucket in turn and
        start over after the last (SSCAN's guarantees, bucket by bucket)."""
        cursor, found = await self.redis.sscan(self.keys[self._bucket], self._cursor, count=count)
        self._cursor = int(cursor)
        if self._cursor == 0:
            self._bucket = (self._bucket + 1) % BUCKETS
        return [as_str(m) for m in found]


def _pairs(replies: Iterable[Any]) -> list[list[tuple[str, float]]]:
    return [[(as_str(m), float(s)) for m, s in reply] for reply in replies]
