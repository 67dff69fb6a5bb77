"""Group buys on Redis/Valkey: every join, leave and expiry is one Lua call.

A join is idempotent per user (a retry or a double click changes nothing),
moves the group's member count, quantity and version, records the
neighbour invite, appends the order to the room's ``orders`` stream, and —
when the count reaches the target — flips the group to ``formed`` exactly
once, credits the share officers' commission and emits ``groupbuy_formed``,
all in the same atomic step. Expiry flips every still-open group of a group
buy to ``failed`` exactly once, whichever node's sweep gets there first.

Keys (all tagged with the room): ``gb:<id>`` (spec and status),
``gb:<id>:g:<group>`` (n, q, v, s, b), ``gb:<id>:m:<group>`` (user → qty),
``gb:<id>:inv:<group>`` (inviter → count), ``gb:<id>:invby:<group>``
(user → inviter), ``gb:<id>:groups``, ``gbs``, ``buyers``, ``orders``,
``attrib``, ``officer:<user>``, ``leaderboard``. Officer and attribution keys
are derived inside the scripts from the room prefix (same hash slot).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis

from livecore.groupbuy import (
    ATTRIBUTION_WINDOW_S,
    DEFAULT_LEVEL1_BP,
    DEFAULT_LEVEL2_BP,
    GroupBuySpec,
)
from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.bus import EMIT_LUA, Bus, channel
from livecore.store.officers import ATTRIBUTION_LUA
from livecore.store.replies import as_str

DEADLINES = "lc:gb:deadlines"  # not room-tagged: read by every node's sweep
ORDERS_MAXLEN = 100_000

_COMMON = (
    EMIT_LUA
    + ATTRIBUTION_LUA
    + """
local function unit_price(meta, n, bonus)
  local price = tonumber(meta.price)
  local discount = 0
  for m, d in string.gmatch(meta.tiers, '(%d+):(%d+)') do
    if n >= tonumber(m) then discount = tonumber(d) end
  end
  if bonus == '1' then discount = discount + tonumber(meta.bonus_cents) end
  return price - discount
end

local function credit(prefix, member, amount, l1, l2, now, window)
  local officer = attributed(redis.call('HGET', prefix .. 'attrib', member), now, window)
  if not officer then return end
  local c1 = math.floor(amount * l1 / 10000)
  redis.call('HINCRBY', prefix .. 'officer:' .. officer, 'earned', c1)
  redis.call('ZINCRBY', prefix .. 'leaderboard', c1, officer)
  local recruiter = redis.call('HGET', prefix .. 'officer:' .. officer, 'recruiter')
  if recruiter and recruiter ~= '' then
    local c2 = math.floor(amount * l2 / 10000)
    redis.call('HINCRBY', prefix .. 'officer:' .. recruiter, 'earned', c2)
    redis.call('ZINCRBY', prefix .. 'leaderboard', c2, recruiter)
  end
end

local function order(korders, fields)
  redis.call('XADD', korders, 'MAXLEN', '~', 100000, '*', unpack(fields))
end

local function load_meta(kmeta)
  local raw = redis.call('HGETALL', kmeta)
  if #raw == 0 then return nil end
  local meta = {}
  for i = 1, #raw, 2 do meta[raw[i]] = raw[i + 1] end
  return meta
end
"""
)

# KEYS: meta group members inv invby buyers orders stream offset epoch groups
# ARGV: prefix channel maxlen candidate gid grp user qty inviter now window
_JOIN = (
    _COMMON
    + """
local prefix, gid, grp, user = ARGV[1], ARGV[5], ARGV[6], ARGV[7]
local qty, inviter, now, window = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
local meta = load_meta(KEYS[1])
if not meta then return {-1} end
if meta.status ~= 'open' or tonumber(meta.deadline) <= now then return {-2} end
if qty > tonumber(meta.max_qty) then return {-3, tonumber(meta.max_qty)} end
local status = redis.call('HGET', KEYS[2], 's') or 'open'
if status == 'failed' then return {-2} end
local prev = redis.call('HGET', KEYS[3], user)
if prev and tonumber(prev) == qty then
  local g = redis.call('HMGET', KEYS[2], 'v', 'n', 'q', 'b')
  return {0, tonumber(g[1]), tonumber(g[2]), tonumber(g[3]), status, g[4] or '0'}
end
if prev and status == 'formed' then return {-6} end
if not prev and inviter ~= '' then
  if inviter == user then return {-4} end
  if redis.call('HEXISTS', KEYS[3], inviter) == 0 then return {-5} end
end
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
if not prev then
  n = redis.call('HINCRBY', KEYS[2], 'n', 1)
  redis.call('SADD', KEYS[11], grp)
end
redis.call('HSET', KEYS[3], user, qty)
local q = redis.call('HINCRBY', KEYS[2], 'q', qty - (tonumber(prev) or 0))
local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
redis.call('SADD', KEYS[6], user)
local bonus = redis.call('HGET', KEYS[2], 'b') or '0'
if not prev and inviter ~= '' then
  redis.call('HSET', KEYS[5], user, inviter)
  local invited = redis.call('HINCRBY', KEYS[4], inviter, 1)
  local need = tonumber(meta.bonus_invites)
  if need > 0 and invited >= need and bonus ~= '1' then
    bonus = '1'
    redis.call('HSET', KEYS[2], 'b', '1')
  end
end
order(KEYS[7], {'type', 'join', 'gb', gid, 'group', grp, 'user', user, 'qty', qty,
                'version', v, 'ts', now})
local target = tonumber(meta.target)
if status == 'open' and n >= target then
  status = 'formed'
  redis.call('HSET', KEYS[2], 's', 'formed')
  local unit = unit_price(meta, n, bonus)
  local members = redis.call('HGETALL', KEYS[3])
  for i = 1, #members, 2 do
    credit(prefix, members[i], unit * tonumber(members[i + 1]), tonumber(meta.l1),
           tonumber(meta.l2), now, window)
  end
  order(KEYS[7], {'type', 'formed', 'gb', gid, 'group', grp, 'members', n, 'qty', q,
                  'unit_cents', unit, 'ts', now})
  local payload = cmsgpack.pack({t = 'groupbuy_formed', gb = gid, group = grp, members = n,
                                 qty = q, unit_cents = unit})
  emit(KEYS[8], KEYS[9], KEYS[10], ARGV[2], payload, ARGV[3], ARGV[4])
elseif status == 'formed' and not prev then
  credit(prefix, user, unit_price(meta, n, bonus) * qty, tonumber(meta.l1), tonumber(meta.l2),
         now, window)
end
return {1, v, n, q, status, bonus}
"""
)

# KEYS: meta group members inv invby orders | ARGV: gid grp user now
_LEAVE = (
    _COMMON
    + """
local meta = load_meta(KEYS[1])
if not meta then return {-1} end
if meta.status ~= 'open' or tonumber(meta.deadline) <= tonumber(ARGV[4]) then return {-2} end
local status = redis.call('HGET', KEYS[2], 's') or 'open'
local prev = redis.call('HGET', KEYS[3], ARGV[3])
if not prev then
  local g = redis.call('HMGET', KEYS[2], 'v', 'n', 'q', 'b')
  return {0, tonumber(g[1] or '0'), tonumber(g[2] or '0'), tonumber(g[3] or '0'), status,
          g[4] or '0'}
end
if status ~= 'open' then return {-6} end
redis.call('HDEL', KEYS[3], ARGV[3])
local n = redis.call('HINCRBY', KEYS[2], 'n', -1)
local q = redis.call('HINCRBY', KEYS[2], 'q', -tonumber(prev))
local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
local inviter = redis.call('HGET', KEYS[5], ARGV[3])
if inviter then
  redis.call('HDEL', KEYS[5], ARGV[3])
  redis.call('HINCRBY', KEYS[4], inviter, -1)
end
order(KEYS[6], {'type', 'leave', 'gb', ARGV[1], 'group', ARGV[2], 'user', ARGV[3],
                'qty', tonumber(prev), 'version', v, 'ts', tonumber(ARGV[4])})
return {1, v, n, q, status, redis.call('HGET', KEYS[2], 'b') or '0'}
"""
)

# KEYS: meta groups orders stream offset epoch | ARGV: prefix channel maxlen candidate gid now
_EXPIRE = (
    _COMMON
    + """
local meta = load_meta(KEYS[1])
if not meta or meta.status ~= 'open' then return 0 end
if tonumber(meta.deadline) > tonumber(ARGV[6]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'closed')
local failed = 0
for _, grp in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local kgroup = ARGV[1] .. 'gb:' .. ARGV[5] .. ':g:' .. grp
  if (redis.call('HGET', kgroup, 's') or 'open') == 'open' then
    redis.call('HSET', kgroup, 's', 'failed')
    redis.call('HINCRBY', kgroup, 'v', 1)
    failed = failed + 1
    local n = tonumber(redis.call('HGET', kgroup, 'n') or '0')
    order(KEYS[3], {'type', 'failed', 'gb', ARGV[5], 'group', grp, 'members', n,
                    'ts', tonumber(ARGV[6])})
    local payload = cmsgpack.pack({t = 'groupbuy_failed', gb = ARGV[5], group = grp, members = n})
    emit(KEYS[4], KEYS[5], KEYS[6], ARGV[2], payload, ARGV[3], ARGV[4])
  end
end
local payload = cmsgpack.pack({t = 'groupbuy_closed', gb = ARGV[5]})
emit(KEYS[4], KEYS[5], KEYS[6], ARGV[2], payload, ARGV[3], ARGV[4])
return failed + 1
"""
)


@dataclass(frozen=True, slots=True)
class GroupState:
    """A group's progress as clients see it."""

    version: int
    members: int
    qty: int
    status: str
    bonus: bool


class GroupBuyStore:
    """Open, join, leave, expire and read group buys."""

    def __init__(self, redis: Redis, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self._join = redis.register_script(_JOIN)
        self._leave = redis.register_script(_LEAVE)
        self._expire = redis.register_script(_EXPIRE)

    @staticmethod
    def _k(room: str, gid: str, part: str = "") -> str:
        return keys.room(room, f"gb:{gid}{part}")

    async def open(self, room: str, spec: GroupBuySpec, level1_bp: int, level2_bp: int) -> str:
        """Store a new group buy and its deadline; emits ``groupbuy_opened``."""
        gid = "g" + secrets.token_hex(4)
        tiers = ",".join(f"{m}:{d}" for m, d in spec.tiers)
        pipe = self.redis.pipeline(transaction=True)
        spec_fields: dict[str, str | int] = {
            "status": "open", "product": spec.product, "price": spec.price_cents,
            "target": spec.target, "deadline": spec.deadline, "tiers": tiers,
            "max_qty": spec.max_qty, "scope": spec.scope.value,
            "bonus_invites": spec.bonus_invites, "bonus_cents": spec.bonus_cents,
            "l1": level1_bp, "l2": level2_bp,
        }  # fmt: skip
        pipe.hset(self._k(room, gid), mapping=spec_fields)  # type: ignore[arg-type]
        pipe.sadd(keys.room(room, "gbs"), gid)
        await pipe.execute()
        await self.redis.zadd(DEADLINES, {f"{room}|{gid}": spec.deadline})
        event = {"t": "groupbuy_opened", "gb": gid, **spec.public()}
        await self.bus.emit(room, msgpack.packb(event))
        return gid

    def _group_keys(self, room: str, gid: str, grp: str) -> list[str]:
        return [self._k(room, gid), self._k(room, gid, f":g:{grp}"),
                self._k(room, gid, f":m:{grp}"), self._k(room, gid, f":inv:{grp}"),
                self._k(room, gid, f":invby:{grp}")]  # fmt: skip

    async def join(
        self, room: str, gid: str, grp: str, user: str, qty: int, inviter: str, now: int
    ) -> tuple[int, GroupState | int]:
        """(code, state): code 1 changed, 0 unchanged; negative codes are refusals
        (-1 unknown, -2 closed, -3 over max_qty (state = the max), -4 self-invite,
        -5 inviter not in the group, -6 group formed)."""
        reply = await run(
            self._join,
            [*self._group_keys(room, gid, grp), keys.room(room, "buyers"),
             keys.room(room, "orders"), *self.bus.emit_keys(room), self._k(room, gid, ":groups")],
            [keys.room(room, ""), channel(room), self.bus.history_max, secrets.token_hex(8), gid,
             grp, user, qty, inviter, now, ATTRIBUTION_WINDOW_S],
            self.batcher,
        )  # fmt: skip
        return _result(reply)

    async def leave(self, room: str, gid: str, grp: str, user: str, now: int) -> tuple[int, Any]:
        """(code, state) as for :meth:`join`."""
        reply = await run(
            self._leave,
            [*self._group_keys(room, gid, grp), keys.room(room, "orders")],
            [gid, grp, user, now],
            self.batcher,
        )
        return _result(reply)

    async def expire(self, room: str, gid: str, now: int) -> int:
        """Close a group buy whose deadline passed; >0 only for the one caller that did it."""
        done = int(
            await self._expire(
                keys=[
                    self._k(room, gid),
                    self._k(room, gid, ":groups"),
                    keys.room(room, "orders"),
                    *self.bus.emit_keys(room),
                ],
                args=[
                    keys.room(room, ""),
                    channel(room),
                    self.bus.history_max,
                    secrets.token_hex(8),
                    gid,
                    now,
                ],
            )
        )
        if done or await self.redis.hget(self._k(room, gid), "status") != b"open":
            await self.redis.zrem(DEADLINES, f"{room}|{gid}")
        return done

    async def due(self, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """(room, group buy) pairs whose deadline has come, across all rooms."""
        members = await self.redis.zrangebyscore(DEADLINES, 0, now, start=0, num=limit)
        out = []
        for member in members:
            room, _, gid = as_str(member).partition("|")
            out.append((room, gid))
        return out

    async def spec(self, room: str, gid: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(self._k(room, gid))
        return {as_str(k): as_str(v) for k, v in raw.items()} if raw else None

    async def group(self, room: str, gid: str, grp: str) -> GroupState:
        raw = await self.redis.hmget(self._k(room, gid, f":g:{grp}"), ["v", "n", "q", "s", "b"])
        v, n, q, s, b = raw
        return GroupState(int(v or 0), int(n or 0), int(q or 0), as_str(s) if s else "open",
                          b == b"1")  # fmt: skip

    async def open_ids(self, room: str) -> list[str]:
        """Group buys of the room that are still open."""
        gids = sorted(as_str(g) for g in await self.redis.smembers(keys.room(room, "gbs")))
        out = []
        for gid in gids:
            if await self.redis.hget(self._k(room, gid), "status") == b"open":
                out.append(gid)
        return out

    async def group_names(self, room: str, gid: str) -> list[str]:
        """Every group of a group buy that has (had) a member, sorted."""
        raw = await self.redis.smembers(self._k(room, gid, ":groups"))
        return sorted(as_str(g) for g in raw)

    async def quantity_of(self, room: str, gid: str, grp: str, user: str) -> int | None:
        """What ``user`` joined ``grp`` with (None: not a member)."""
        qty = await self.redis.hget(self._k(room, gid, f":m:{grp}"), user)
        return None if qty is None else int(qty)

    async def commission(self, room: str) -> tuple[int, int]:
        """The room's commission levels in basis points (the defaults until set)."""
        raw = await self.redis.hget(keys.room(room, "state"), "commission")
        if not raw:
            return DEFAULT_LEVEL1_BP, DEFAULT_LEVEL2_BP
        level1, level2 = msgpack.unpackb(raw)
        return int(level1), int(level2)

    async def set_commission(self, room: str, level1: int, level2: int) -> None:
        await self.redis.hset(
            keys.room(room, "state"), "commission", msgpack.packb([level1, level2])
        )

    async def note_order_room(self, room: str) -> None:
        """Register a room that has orders, for the webhook forwarder."""
        await self.redis.sadd(keys.ORDER_ROOMS, room)

    async def members(self, room: str, gid: str, grp: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self._k(room, gid, f":m:{grp}"))
        return {as_str(k): int(v) for k, v in raw.items()}


def _result(reply: Any) -> tuple[int, GroupState | int]:
    code = int(reply[0])
    if code < 0:
        return code, int(reply[1]) if len(reply) > 1 else 0
    v, n, q, status, bonus = reply[1:6]
    return code, GroupState(
        int(v or 0), int(n or 0), int(q or 0), as_str(status), as_str(bonus) == "1"
    )
