"""Lucky draws (福袋) on Redis/Valkey: open, enter and draw are each one Lua call.

Opening checks that no other draw of the room is open, stores the spec with
the seed's commitment (the seed stays in the store until the reveal) and emits
``draw_opened``, atomically. An entry checks the draw is open and the task is
done, and adds the user to the entrant set once (a retry or a second tap
changes nothing). Drawing is two idempotent steps: ``CLOSE`` freezes the
entrant set exactly once; then any node reads the frozen set and the seed,
computes the winners (:func:`livecore.luckydraw.winners`, a pure function,
so every node computes the same list) and ``FINISH`` publishes them exactly
once with ``draw_drawn``. A crash between the two leaves a closed draw that
the next ``draw`` call finishes.

Keys (all tagged with the room): ``draw`` (the id of the draw not yet drawn:
one at a time), ``draws`` (every draw's id), ``draw:<id>`` (spec, status, commitment, seed),
``draw:<id>:in`` (entrants), ``draw:<id>:seen`` (user → first entry attempt,
for the watch task), ``draw:<id>:won`` (winners, in rank order); the task
``groupbuy`` reads the room's ``buys`` (user → group buys joined).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import msgpack

from livecore import luckydraw
from livecore.luckydraw import DrawSpec, DrawStatus, Task
from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.bus import EMIT_LUA, Bus, Emitted, emitted
from livecore.store.client import StoreClient
from livecore.store.index import ScoredIndex
from livecore.store.replies import as_str

#: Draws a room may hold in all (open and past).
MAX_DRAWS = 50

# KEYS: stream offset epoch current draws meta
# ARGV: channel payload maxlen candidate did max_draws field value ...
_OPEN = (
    EMIT_LUA
    + """
-- KEYS[4] names the draw not yet drawn (open, or past its entry time): one at a time
local cur = redis.call('GET', KEYS[4])
if cur then return {-1, cur} end
if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[6]) then return {-2, ''} end
redis.call('HSET', KEYS[6], unpack(ARGV, 7))
redis.call('SET', KEYS[4], ARGV[5])
redis.call('SADD', KEYS[5], ARGV[5])
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: meta entrants seen buys stream offset epoch mute
# ARGV: user now max_entrants channel comment maxlen candidate
# Returns {1, n} entered, {0, n} entered already, {-1} unknown, {-2} closed,
# {-3} no group buy joined, {-4, seconds left} watched too briefly, {-5} full,
# {-6, seconds left} muted (a comment task's phrase cannot be posted).
# With a comment (the comment task), the phrase is emitted in the same step as
# the entry: a refused entry posts nothing, a posted phrase is always an entry.
_ENTER = (
    EMIT_LUA
    + """
local m = redis.call('HMGET', KEYS[1], 'status', 'closes_at', 'task', 'minutes')
if not m[1] then return {-1} end
local now = tonumber(ARGV[2])
if m[1] ~= 'open' or tonumber(m[2]) <= now then return {-2} end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {0, redis.call('SCARD', KEYS[2])}
end
if m[3] == 'groupbuy' and redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then return {-3} end
if m[3] == 'watch' then
  if redis.call('HLEN', KEYS[3]) >= 2 * tonumber(ARGV[3]) then return {-5} end
  redis.call('HSETNX', KEYS[3], ARGV[1], now)
  local left = tonumber(redis.call('HGET', KEYS[3], ARGV[1])) + tonumber(m[4]) * 60 - now
  if left > 0 then return {-4, left} end
end
local n = redis.call('SCARD', KEYS[2])
if n >= tonumber(ARGV[3]) then return {-5} end
if ARGV[5] ~= '' then
  if redis.call('EXISTS', KEYS[8]) == 1 then return {-6, redis.call('TTL', KEYS[8])} end
  emit(KEYS[5], KEYS[6], KEYS[7], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
end
redis.call('SADD', KEYS[2], ARGV[1])
return {1, n + 1}
"""
)

# KEYS: meta | ARGV: now
# Returns {1} closed now, {0, status} already closed or drawn, {-1} unknown.
_CLOSE = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {-1} end
if st ~= 'open' then return {0, st} end
redis.call('HSET', KEYS[1], 'status', 'closed', 'closed_at', ARGV[1])
return {1}
"""

# KEYS: stream offset epoch meta won current
# ARGV: channel payload maxlen candidate did winner ...
# Returns the event's {offset, epoch}, or {0} drawn already, {-1} not closed.
_FINISH = (
    EMIT_LUA
    + """
local st = redis.call('HGET', KEYS[4], 'status')
if st == 'drawn' then return {0} end
if st ~= 'closed' then return {-1} end
redis.call('HSET', KEYS[4], 'status', 'drawn')
if redis.call('GET', KEYS[6]) == ARGV[5] then redis.call('DEL', KEYS[6]) end
if #ARGV > 5 then redis.call('RPUSH', KEYS[5], unpack(ARGV, 6)) end
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

#: Refusal codes of :meth:`DrawStore.enter`.
UNKNOWN, CLOSED, NO_GROUPBUY, WATCHING, FULL, MUTED = range(-1, -7, -1)


@dataclass(frozen=True, slots=True)
class Draw:
    """A draw as anyone may read it (the seed only once drawn)."""

    id: str
    spec: DrawSpec
    status: DrawStatus
    commitment: str
    entrants: int
    opened_at: int
    seed: str | None = None
    winners: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"draw": self.id, **self.spec.public(), "status": self.status.value,
                               "commitment": self.commitment, "entrants": self.entrants,
                               "opened_at": self.opened_at}  # fmt: skip
        if self.status is DrawStatus.DRAWN:
            out["seed"] = self.seed
            out["won"] = list(self.winners)
        return out


#: Draws whose entry time the sweep looks for, as ``room|id`` by ``closes_at``.
DRAW_DUE = "drawdue"


class DrawStore:
    """Open, enter, draw and read a room's lucky draws."""

    def __init__(self, redis: StoreClient, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self.due_index = ScoredIndex(redis, DRAW_DUE)
        self._open = redis.register_script(_OPEN)
        self._enter = redis.register_script(_ENTER)
        self._close = redis.register_script(_CLOSE)
        self._finish = redis.register_script(_FINISH)

    @staticmethod
    def _k(room: str, did: str, part: str = "") -> str:
        return keys.room(room, f"draw:{did}{part}")

    async def open(self, room: str, spec: DrawSpec, now: int) -> tuple[int, str, Emitted | None]:
        """(1, id, event) opened; (-1, the open draw's id, None) another draw is
        open; (-2, "", None) the room has MAX_DRAWS draws."""
        did = "d" + secrets.token_hex(4)
        seed = luckydraw.new_seed()
        commit = luckydraw.commitment(seed)
        payload = msgpack.packb(
            {"t": "draw_opened", "draw": did, **spec.public(), "commitment": commit}
        )
        meta: dict[str, str | int] = {
            "status": "open", "prize": spec.prize, "winners": spec.winners,
            "task": spec.task.value, "phrase": spec.phrase, "minutes": spec.minutes,
            "closes_at": spec.closes_at, "commitment": commit, "seed": seed.hex(),
            "opened_at": now,
        }  # fmt: skip
        # the entry's end is indexed first: a crash after it leaves an entry the sweep drops
        await self.due_index.add(f"{room}|{did}", spec.closes_at)
        reply = await self._open(
            keys=[*self.bus.emit_keys(room), keys.room(room, "draw"), keys.room(room, "draws"),
                  self._k(room, did)],
            args=[*self.bus.emit_args(room, payload), did, MAX_DRAWS,
                  *(x for pair in meta.items() for x in pair)],
        )  # fmt: skip
        code = int(reply[0])
        if code < 0:
            await self.due_index.remove(f"{room}|{did}")
            return code, as_str(reply[1]), None
        return 1, did, emitted(reply)

    async def enter(
        self, room: str, did: str, user: str, now: int, comment: bytes = b""
    ) -> tuple[int, int]:
        """(code, n): 1 entered (n entrants now), 0 entered before; negative codes
        are refusals (UNKNOWN, CLOSED, NO_GROUPBUY, WATCHING (n = seconds left), FULL,
        MUTED (n = seconds left)). ``comment``: the comment task's event, emitted in
        the same step as a new entry and never with a refused one."""
        reply = await run(
            self._enter,
            [self._k(room, did), self._k(room, did, ":in"), self._k(room, did, ":seen"),
             keys.room(room, "buys"), *self.bus.emit_keys(room),
             keys.room(room, f"muted:{user}")],
            [user, now, luckydraw.MAX_ENTRANTS, *self.bus.emit_args(room, comment)],
            self.batcher,
        )  # fmt: skip
        return int(reply[0]), int(reply[1]) if len(reply) > 1 else 0

    async def draw(self, room: str, did: str, now: int) -> tuple[int, Draw | None, Emitted | None]:
        """Close entry and publish the winners, each exactly once.

        (1, draw, event) drawn by this call; (0, draw, None) drawn before (the
        same winners); (-1, None, None) no such draw."""
        reply = await self._close(keys=[self._k(room, did)], args=[now])
        if int(reply[0]) == -1:
            await self.due_index.remove(f"{room}|{did}")
            return -1, None, None
        found = await self.get(room, did)
        if found is None:  # pragma: no cover - a draw is never deleted while its room lives
            return -1, None, None
        if found.status is DrawStatus.DRAWN:
            await self.due_index.remove(f"{room}|{did}")
            return 0, found, None
        entrants = await self.entrants(room, did)
        assert found.seed is not None
        won = luckydraw.winners(bytes.fromhex(found.seed), entrants, found.spec.winners)
        payload = msgpack.packb(
            {"t": "draw_drawn", "draw": did, "prize": found.spec.prize, "won": won,
             "seed": found.seed, "commitment": found.commitment, "entrants": len(entrants)}
        )  # fmt: skip
        done = await self._finish(
            keys=[*self.bus.emit_keys(room), self._k(room, did), self._k(room, did, ":won"),
                  keys.room(room, "draw")],
            args=[*self.bus.emit_args(room, payload), did, *won],
        )  # fmt: skip
        await self.due_index.remove(f"{room}|{did}")
        final = await self.get(room, did)
        if int(done[0]) <= 0 or final is None:
            return 0, final, None
        return 1, final, emitted(done)

    async def due(self, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """(room, draw) pairs whose entry time is over and that are not drawn yet, across
        all rooms: every node's sweep draws them (once: :meth:`draw`), so a draw is
        drawn on time with no host console open."""
        out = []
        for member in await self.due_index.upto(now, limit):
            room, _, did = member.partition("|")
            out.append((room, did))
        return out

    async def get(self, room: str, did: str) -> Draw | None:
        """A draw with its counts; the seed is filled in for drawing, and shown by
        :meth:`Draw.public` only once drawn."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(self._k(room, did))
        pipe.scard(self._k(room, did, ":in"))
        pipe.lrange(self._k(room, did, ":won"), 0, -1)
        raw, n, won = await pipe.execute()
        if not raw:
            return None
        m = {as_str(k): as_str(v) for k, v in raw.items()}
        spec = DrawSpec(m["prize"], int(m["winners"]), Task(m["task"]), m["phrase"],
                        int(m["minutes"]), int(m["closes_at"]))  # fmt: skip
        return Draw(did, spec, DrawStatus(m["status"]), m["commitment"], int(n),
                    int(m["opened_at"]), m["seed"], tuple(as_str(w) for w in won))  # fmt: skip

    async def entrants(self, room: str, did: str) -> list[str]:
        """Every entrant of a draw, sorted (the list the winners are drawn from)."""
        return sorted(as_str(u) for u in await self.redis.smembers(self._k(room, did, ":in")))

    async def is_entrant(self, room: str, did: str, user: str) -> bool:
        return bool(await self.redis.sismember(self._k(room, did, ":in"), user))

    async def current(self, room: str) -> str | None:
        """The open draw's id, if any."""
        did = await self.redis.get(keys.room(room, "draw"))
        return as_str(did) if did is not None else None

    async def ids(self, room: str) -> list[str]:
        """Every draw of the room, newest first."""
        found = [as_str(d) for d in await self.redis.smembers(keys.room(room, "draws"))]
        draws = [d for d in [await self.get(room, did) for did in found] if d is not None]
        return [d.id for d in sorted(draws, key=lambda d: d.opened_at, reverse=True)]
