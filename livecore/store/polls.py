"""Polls ("下期想团A还是B?") on Redis/Valkey: exact under concurrency and many nodes.

One vote is one Lua call: it checks the poll is open, records the user's
choice (one per user, changeable until close), moves the tally and bumps the
tally's version. Closing is one call that flips ``open`` → ``closed`` exactly
once and emits the final result as a durable event in the same step.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.bus import EMIT_LUA, Bus, Emitted, channel, emitted
from livecore.store.client import StoreClient
from livecore.store.replies import as_str

#: Polls a room may hold in all (open and closed).
MAX_POLLS = 50

# KEYS: stream offset epoch polls meta closing
# ARGV: channel payload maxlen candidate pid question options n closes_at now max
_OPEN = (
    EMIT_LUA
    + """
if redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[11]) then return {-1, ''} end
redis.call('HSET', KEYS[5], 'question', ARGV[6], 'options', ARGV[7], 'n', ARGV[8],
           'closes_at', ARGV[9], 'status', 'open', 'opened_at', ARGV[10])
redis.call('SADD', KEYS[4], ARGV[5])
if tonumber(ARGV[9]) > 0 then redis.call('ZADD', KEYS[6], ARGV[9], ARGV[5]) end
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: meta votes tally | ARGV: user option now
_VOTE = """
local st = redis.call('HMGET', KEYS[1], 'status', 'closes_at', 'n')
if not st[1] then return {-1, 0} end
local closes = tonumber(st[2])
if st[1] ~= 'open' or (closes > 0 and closes <= tonumber(ARGV[3])) then return {-2, 0} end
if tonumber(ARGV[2]) >= tonumber(st[3]) then return {-3, tonumber(st[3])} end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev == ARGV[2] then return {0, tonumber(redis.call('HGET', KEYS[3], '_v') or '0')} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if prev then redis.call('HINCRBY', KEYS[3], prev, -1) end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
return {1, redis.call('HINCRBY', KEYS[3], '_v', 1)}
"""

# KEYS: stream offset epoch meta tally closing | ARGV: channel maxlen candidate pid now
_CLOSE = (
    EMIT_LUA
    + """
local st = redis.call('HGET', KEYS[4], 'status')
if not st then return {-1, ''} end
if st ~= 'open' then return {0, ''} end
redis.call('HSET', KEYS[4], 'status', 'closed', 'closed_at', ARGV[5])
redis.call('ZREM', KEYS[6], ARGV[4])
local n = tonumber(redis.call('HGET', KEYS[4], 'n'))
local counts, total = {}, 0
for i = 0, n - 1 do
  local c = tonumber(redis.call('HGET', KEYS[5], tostring(i)) or '0')
  counts[i + 1] = c
  total = total + c
end
local payload = cmsgpack.pack({t = 'poll_closed', poll = ARGV[4], counts = counts, total = total})
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], payload, ARGV[2], ARGV[3])
"""
)


class VoteResult(IntEnum):
    NOT_FOUND = -1
    CLOSED = -2
    BAD_OPTION = -3
    UNCHANGED = 0
    COUNTED = 1


@dataclass(frozen=True, slots=True)
class Poll:
    id: str
    question: str
    options: list[str]
    status: str
    closes_at: int
    counts: list[int]
    version: int

    def public(self) -> dict[str, Any]:
        return {
            "poll": self.id, "question": self.question, "options": self.options,
            "status": self.status, "closes_at": self.closes_at or None,
            "counts": self.counts, "v": self.version,
        }  # fmt: skip


class PollStore:
    """Open, vote, close and read a room's polls."""

    def __init__(self, redis: StoreClient, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self._open = redis.register_script(_OPEN)
        self._vote = redis.register_script(_VOTE)
        self._close = redis.register_script(_CLOSE)

    @staticmethod
    def _k(room: str, pid: str, part: str = "") -> str:
        return keys.room(room, f"poll:{pid}{part}")

    async def open(
        self, room: str, question: str, options: list[str], closes_at: int, now: int
    ) -> tuple[str, Emitted] | None:
        """Open a poll and emit ``poll_opened``; None when the room has MAX_POLLS."""
        pid = "p" + secrets.token_hex(4)
        payload = msgpack.packb(
            {"t": "poll_opened", "poll": pid, "question": question, "options": options,
             "closes_at": closes_at or None}
        )  # fmt: skip
        reply = await self._open(
            keys=[*self.bus.emit_keys(room), keys.room(room, "polls"), self._k(room, pid),
                  keys.room(room, "closing")],
            args=[*self.bus.emit_args(room, payload), pid, question, msgpack.packb(options),
                  len(options), closes_at, now, MAX_POLLS],
        )  # fmt: skip
        if int(reply[0]) == -1:
            return None
        return pid, emitted(reply)

    async def vote(
        self, room: str, pid: str, user: str, option: int, now: int
    ) -> tuple[VoteResult, int]:
        """Record ``user``'s choice; returns the result and the tally version (or option count)."""
        reply = await run(
            self._vote,
            [self._k(room, pid), self._k(room, pid, ":votes"), self._k(room, pid, ":tally")],
            [user, option, now],
            self.batcher,
        )
        return VoteResult(int(reply[0])), int(reply[1])

    async def close(self, room: str, pid: str, now: int) -> Emitted | bool | None:
        """Close once: the ``poll_closed`` event; False if already closed; None if unknown."""
        reply = await self._close(
            keys=[*self.bus.emit_keys(room), self._k(room, pid), self._k(room, pid, ":tally"),
                  keys.room(room, "closing")],
            args=[channel(room), self.bus.history_max, secrets.token_hex(8), pid, now],
        )  # fmt: skip
        if int(reply[0]) == -1:
            return None
        if int(reply[0]) == 0:
            return False
        return emitted(reply)

    async def due(self, room: str, now: int) -> list[str]:
        """Open polls whose close time has come."""
        return [
            as_str(p) for p in await self.redis.zrangebyscore(keys.room(room, "closing"), 0, now)
        ]

    async def vote_of(self, room: str, pid: str, user: str) -> int | None:
        """The option ``user`` chose in a poll (None: no vote)."""
        vote = await self.redis.hget(self._k(room, pid, ":votes"), user)
        return None if vote is None else int(vote)

    async def tally(self, room: str, pid: str) -> tuple[list[int], int] | None:
        """Current counts and version of a poll."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(self._k(room, pid), "n")
        pipe.hgetall(self._k(room, pid, ":tally"))
        n, tally = await pipe.execute()
        if n is None:
            return None
        return _counts(int(n), tally), int(tally.get(b"_v", 0))

    async def all(self, room: str) -> list[Poll]:
        """Every poll of the room, newest first."""
        pids = sorted(as_str(p) for p in await self.redis.smembers(keys.room(room, "polls")))
        pipe = self.redis.pipeline(transaction=False)
        for pid in pids:
            pipe.hgetall(self._k(room, pid))
            pipe.hgetall(self._k(room, pid, ":tally"))
        replies = await pipe.execute()
        polls: list[tuple[int, Poll]] = []
        for i, pid in enumerate(pids):
            meta, tally = replies[2 * i], replies[2 * i + 1]
            if not meta:
                continue
            n = int(meta[b"n"])
            poll = Poll(
                id=pid,
                question=meta[b"question"].decode(),
                options=msgpack.unpackb(meta[b"options"], raw=False),
                status=meta[b"status"].decode(),
                closes_at=int(meta[b"closes_at"]),
                counts=_counts(n, tally),
                version=int(tally.get(b"_v", 0)),
            )
            polls.append((int(meta.get(b"opened_at", 0)), poll))
        polls.sort(key=lambda pair: pair[0], reverse=True)
        return [poll for _, poll in polls]


def _counts(n: int, tally: dict[bytes, bytes]) -> list[int]:
    return [int(tally.get(str(i).encode(), 0)) for i in range(n)]
