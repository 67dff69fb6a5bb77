"""The room bus on Redis/Valkey: durable events with offsets, ephemeral state, pub/sub.

Durable events go through one Lua call (``emit``) that, atomically:
creates the room's epoch if the history is new (or was lost), increments the
room's offset, appends the event to a capped stream under the explicit id
``<offset>-0``, and publishes it on the room's shard channel. Publish order
is therefore offset order, on every node. Other scripts (comment, mute,
card, poll close …) change state and call ``emit`` in the same atomic step,
so a state change and its event are never seen apart.

Channel messages: ``E<epoch>|<offset>|<msgpack event>`` for durable events,
``S<msgpack map>`` for ephemeral, coalesced state (likes, tallies) that
carries its own version and needs no offset.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import msgpack

from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.client import StoreClient
from livecore.store.replies import as_str

#: Events kept per room for recovery (approximate: the stream is trimmed with ~).
HISTORY_MAX = 10_000

EMIT_LUA = """
local function emit(kstream, koffset, kepoch, channel, payload, maxlen, candidate)
  local epoch
  if redis.call('EXISTS', koffset) == 0 then
    epoch = candidate
    redis.call('SET', kepoch, epoch)
    redis.call('DEL', kstream)
  else
    epoch = redis.call('GET', kepoch)
  end
  local off = redis.call('INCR', koffset)
  redis.call('XADD', kstream, 'MAXLEN', '~', maxlen, off .. '-0', 'd', payload)
  redis.call('SPUBLISH', channel, 'E' .. epoch .. '|' .. off .. '|' .. payload)
  return {off, epoch}
end
"""

# KEYS: stream offset epoch | ARGV: channel payload maxlen candidate
_EMIT = (
    EMIT_LUA
    + """
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: stream offset epoch mute dedup | ARGV: channel payload maxlen candidate use_dedup ttl
_COMMENT = (
    EMIT_LUA
    + """
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {-1, redis.call('TTL', KEYS[4])}
end
if ARGV[5] == '1' then
  local prev = redis.call('GET', KEYS[5])
  if prev then return {0, prev} end
end
local r = emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if ARGV[5] == '1' then redis.call('SET', KEYS[5], r[1], 'EX', ARGV[6]) end
return r
"""
)

# KEYS: stream offset epoch state | ARGV: channel payload maxlen candidate field value
_HSET_EMIT = (
    EMIT_LUA
    + """
redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: stream offset epoch key | ARGV: channel payload maxlen candidate value ttl
_SETEX_EMIT = (
    EMIT_LUA
    + """
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)

# KEYS: stream offset epoch deleted state | ARGV: channel payload maxlen candidate target
# keep, then a state field removed when it still holds the given value ('' for none)
_DELETE_EMIT = (
    EMIT_LUA
    + """
if redis.call('ZADD', KEYS[4], 'NX', ARGV[5], ARGV[5]) == 0 then return {0, ''} end
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[6]) - 1)
if ARGV[8] ~= '' and redis.call('HGET', KEYS[5], ARGV[7]) == ARGV[8] then
  redis.call('HDEL', KEYS[5], ARGV[7])
end
return emit(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""
)


@dataclass(frozen=True, slots=True)
class Emitted:
    """Where an event landed: its offset in the room's history and the epoch."""

    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Head:
    """The room's history bounds: next events get offsets > ``offset``."""

    epoch: str
    offset: int
    #: Lowest offset still in the stream (``offset + 1`` when the stream is empty).
    first: int


def emitted(reply: Any) -> Emitted:
    """The ``{offset, epoch}`` reply of a script that ended in ``emit``."""
    return Emitted(int(reply[0]), as_str(reply[1]))


def channel(room: str) -> str:
    return keys.room(room, "bus")


def parse_channel_message(data: bytes) -> tuple[str, int, bytes] | dict[str, Any] | None:
    """``(epoch, offset, payload)`` for a durable event, a dict for ephemeral state."""
    if data[:1] == b"E":
        epoch, _, rest = data[1:].partition(b"|")
        offset, _, payload = rest.partition(b"|")
        return epoch.decode(), int(offset), payload
    if data[:1] == b"S":
        value = msgpack.unpackb(data[1:], raw=False)
        return value if isinstance(value, dict) else None
    return None


# KEYS: stream offset epoch | ARGV: candidate
_ENSURE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[3], ARGV[1])
  redis.call('SET', KEYS[2], 0)
  redis.call('DEL', KEYS[1])
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local f = -1
if #first > 0 then f = first[1][1] end
return {redis.call('GET', KEYS[3]), redis.call('GET', KEYS[2]), f}
"""


class Bus:
    """Publishing and reading a room's durable events and ephemeral state."""

    def __init__(
        self,
        redis: StoreClient,
        *,
        history_max: int = HISTORY_MAX,
        batcher: ScriptBatcher | None = None,
    ) -> None:
        self.redis = redis
        self.history_max = history_max
        self.batcher = batcher
        self._emit = redis.register_script(_EMIT)
        self._comment = redis.register_script(_COMMENT)
        self._hset_emit = redis.register_script(_HSET_EMIT)
        self._setex_emit = redis.register_script(_SETEX_EMIT)
        self._delete_emit = redis.register_script(_DELETE_EMIT)
        self._ensure = redis.register_script(_ENSURE)

    def emit_keys(self, room: str) -> list[str]:
        """KEYS of :data:`EMIT_LUA`'s ``emit``: stream, offset, epoch (scripts that
        emit put them first)."""
        return [keys.room(room, "events"), keys.room(room, "offset"), keys.room(room, "epoch")]

    def emit_args(self, room: str, payload: bytes) -> list[Any]:
        """ARGV of ``emit``: channel, payload, history cap, candidate epoch."""
        return [channel(room), payload, self.history_max, secrets.token_hex(8)]

    async def emit(self, room: str, payload: bytes) -> Emitted:
        """Append and publish one event (msgpack map without ``o``)."""
        return emitted(
            await self._emit(keys=self.emit_keys(room), args=self.emit_args(room, payload))
        )

    async def comment(
        self, room: str, user: str, payload: bytes, cid: str | None, dedup_ttl_s: int = 600
    ) -> Emitted | int:
        """Emit a comment unless the user is muted (returns the mute's seconds left).

        With a client id ``cid``, a retry within ``dedup_ttl_s`` returns the
        first attempt's offset and emits nothing: a retried send counts once.
        """
        dedup = keys.room(room, f"dedup:{user}:{cid or ''}")
        mute = keys.room(room, f"muted:{user}")
        args = [*self.emit_args(room, payload), "1" if cid else "0", dedup_ttl_s]
        reply = await run(self._comment, [*self.emit_keys(room), mute, dedup], args, self.batcher)
        if int(reply[0]) == -1:
            return max(1, int(reply[1]))
        if int(reply[0]) == 0:
            epoch = await self.redis.get(keys.room(room, "epoch"))
            return Emitted(int(reply[1]), as_str(epoch))
        return emitted(reply)

    async def set_state(self, room: str, field: str, value: bytes, payload: bytes) -> Emitted:
        """Set ``field`` of the room's state hash and emit ``payload``, atomically."""
        args = [*self.emit_args(room, payload), field, value]
        return emitted(
            await self._hset_emit(keys=[*self.emit_keys(room), keys.room(room, "state")], args=args)
        )

    async def mute(self, room: str, user: str, seconds: int, payload: bytes) -> Emitted:
        """Mute ``user`` for ``seconds`` and emit ``payload``, atomically."""
        args = [*self.emit_args(room, payload), "1", seconds]
        mute_key = keys.room(room, f"muted:{user}")
        return emitted(await self._setex_emit(keys=[*self.emit_keys(room), mute_key], args=args))

    async def delete(
        self,
        room: str,
        target: int,
        payload: bytes,
        keep: int = 1000,
        unset: tuple[str, bytes] | None = None,
    ) -> Emitted | None:
        """Mark comment ``target`` deleted and emit ``payload``; None if it already was.

        ``unset`` (field, value): remove that state field in the same step if it
        still holds ``value`` (the pinned question of the deleted comment).
        """
        field, value = unset or ("", b"")
        args = [*self.emit_args(room, payload), target, keep, field, value]
        deleted = keys.room(room, "deleted")
        state = keys.room(room, "state")
        reply = await self._delete_emit(keys=[*self.emit_keys(room), deleted, state], args=args)
        return emitted(reply) if int(reply[0]) > 0 else None

    async def is_deleted(self, room: str, target: int) -> bool:
        """Whether comment ``target`` was deleted (among the most recent ``keep``)."""
        return await self.redis.zscore(keys.room(room, "deleted"), target) is not None

    async def deleted(self, room: str) -> set[int]:
        """Offsets of deleted comments (the most recent ``keep``)."""
        members: Any = await self.redis.zrange(keys.room(room, "deleted"), 0, -1)
        return {int(x) for x in members}

    async def state(self, room: str) -> dict[str, Any]:
        """The room's state hash (pinned cards, question, commission …), decoded."""
        raw: Any = await self.redis.hgetall(keys.room(room, "state"))
        return {as_str(k): msgpack.unpackb(v, raw=False) for k, v in raw.items()}

    async def ephemeral(self, room: str, payload: bytes) -> None:
        """Publish coalescable state (no offset, not stored)."""
        await self.redis.spublish(channel(room), b"S" + payload)

    async def head(self, room: str) -> Head:
        """Epoch, last offset and first offset still held (the history is created if new)."""
        epoch, offset, first = await self._ensure(
            keys=self.emit_keys(room), args=[secrets.token_hex(8)]
        )
        last = int(offset)
        first_offset = _offset_of(first) if first != -1 else last + 1
        return Head(as_str(epoch), last, first_offset)

    async def history(
        self, room: str, after: int, upto: int | None = None, limit: int = 1000
    ) -> list[tuple[int, bytes]]:
        """Events with ``after < offset <= upto`` (oldest first, at most ``limit``)."""
        top = f"{upto}-0" if upto is not None else "+"
        entries = await self.redis.xrange(
            keys.room(room, "events"), min=f"({after}-0", max=top, count=limit
        )
        return _entries(entries)

    async def recent(self, room: str, count: int) -> list[tuple[int, bytes]]:
        """The last ``count`` events, oldest first."""
        entries = await self.redis.xrevrange(keys.room(room, "events"), count=count)
        return _entries(entries)[::-1]


def _entries(reply: Any) -> list[tuple[int, bytes]]:
    """``(offset, payload)`` pairs of an XRANGE/XREVRANGE reply."""
    return [(_offset_of(eid), bytes(fields[b"d"])) for eid, fields in reply or []]


def _offset_of(entry_id: bytes | str) -> int:
    return int(as_str(entry_id).split("-", 1)[0])
