"""Coupons on Redis/Valkey: a create and a claim are one Lua call each.

A claim checks, in one atomic step, that the room is live (its ``meta``
status), the coupon exists, its task is done (joining a group buy is read
from the room's ``buys``; watching and commenting are the buyer's facts,
checked by the handler from their connection and from ``coupon:tasks``, which
keeps them across reconnects), quota and per-buyer limit are not reached; then it
counts the claim, records the buyer's count and appends a ``coupon`` record
to the room's ``orders`` stream (the shop learns of the claim; the order that
uses it names it, :mod:`livecore.store.flashsale`). A retried claim with the
same idempotency ``key`` answers what the first did and changes nothing.

Keys (tagged with the room): ``cps`` (the room's coupon ids), ``cp:<id>``
(spec, claimed, v), ``cp:<id>:c`` (user → claimed), ``cp:<id>:u`` (user →
used), ``cp:<id>:k`` (user|key of claims that succeeded), ``coupon:tasks``
(``w:<user>`` → earliest arrival of a session, ``c:<user>`` → commented).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import msgpack

from livecore.coupons import MAX_COUPONS, CouponSpec
from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.bus import EMIT_LUA, Bus, channel
from livecore.store.client import StoreClient
from livecore.store.replies import as_str

# KEYS: 1 cps 2 coupon 3 stream 4 offset 5 epoch
# ARGV: 1 channel 2 maxlen 3 candidate 4 id 5 max coupons 6 payload 7… fields
# Returns 1 created, 0 the id exists (draw another), -1 the room has MAX_COUPONS.
CREATE = (
    EMIT_LUA
    + """
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[5]) then return -1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[2], 'claimed', 0, 'v', 1, unpack(ARGV, 7))
redis.call('SADD', KEYS[1], ARGV[4])
emit(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[6], ARGV[2], ARGV[3])
return 1
"""
)

# KEYS: 1 room meta 2 coupon 3 claims 4 idem 5 buys 6 orders
# ARGV: 1 id 2 user 3 now 4 session task done ('1'/'0') 5 key
# Returns {code, v, claimed, quota, mine}: 1 claimed, 0 the same key claimed already;
# refusals {-1} room not live, {-2} no such coupon, {-3} task not done, {-4} none left,
# {-5, per_user} the buyer holds their limit.
CLAIM = """
local cid, user, now, key = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[5]
local c = redis.call('HMGET', KEYS[2], 'v', 'claimed', 'quota', 'per_user', 'task')
if not c[1] then return {-2} end
local v, claimed, quota = tonumber(c[1]), tonumber(c[2]), tonumber(c[3])
local ikey = user .. '|' .. key
if key ~= '' and redis.call('HEXISTS', KEYS[4], ikey) == 1 then
  return {0, v, claimed, quota, tonumber(redis.call('HGET', KEYS[3], user) or '0')}
end
if redis.call('HGET', KEYS[1], 'status') ~= 'live' then return {-1} end
local task = c[5]
if task == 'groupbuy' then
  if tonumber(redis.call('HGET', KEYS[5], user) or '0') <= 0 then return {-3} end
elseif task ~= 'none' and ARGV[4] ~= '1' then
  return {-3}
end
if claimed >= quota then return {-4} end
local had = tonumber(redis.call('HGET', KEYS[3], user) or '0')
if had >= tonumber(c[4]) then return {-5, tonumber(c[4])} end
claimed = claimed + 1
v = v + 1
redis.call('HSET', KEYS[2], 'claimed', claimed, 'v', v)
local mine = redis.call('HINCRBY', KEYS[3], user, 1)
if key ~= '' then redis.call('HSET', KEYS[4], ikey, 1) end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', 100000, '*', 'type', 'coupon', 'cp', cid,
           'user', user, 'off_cents', redis.call('HGET', KEYS[2], 'off'),
           'min_cents', redis.call('HGET', KEYS[2], 'min'), 'ts', now)
return {1, v, claimed, quota, mine}
"""


def coupon_keys(room: str, cid: str) -> list[str]:
    """A coupon's spec, claims and uses (what a buy that hands it in touches)."""
    base = keys.room(room, f"cp:{cid}")
    return [base, f"{base}:c", f"{base}:u"]


@dataclass(frozen=True, slots=True)
class CouponState:
    """A coupon's progress as clients see it (``st.coupons``)."""

    id: str
    version: int
    claimed: int
    quota: int

    def public(self) -> dict[str, Any]:
        return {"v": self.version, "claimed": self.claimed,
                "left": max(0, self.quota - self.claimed)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClaimResult:
    code: int
    state: CouponState | None = None
    mine: int = 0
    arg: int = 0


#: Buyers whose coupon-task facts a room keeps (beyond it, a buyer's watch time
#: counts from their current connection only).
MAX_TASK_FACTS = 100_000

# KEYS: 1 task facts | ARGV: user since commented(0|1) cap
# Keeps the earliest ``since`` of the user's sessions (``w:<user>``) and whether
# they ever commented (``c:<user>``); new users only while under the cap.
_REMEMBER = """
local w, c = 'w:' .. ARGV[1], 'c:' .. ARGV[1]
local cur = redis.call('HGET', KEYS[1], w)
if not cur and redis.call('HLEN', KEYS[1]) >= 2 * tonumber(ARGV[4]) then return 0 end
if not cur or tonumber(cur) > tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], w, ARGV[2]) end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], c, '1') end
return 1
"""


class CouponStore:
    """Create, claim and read a room's coupons."""

    def __init__(self, redis: StoreClient, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self._create = redis.register_script(CREATE)
        self._claim = redis.register_script(CLAIM)
        self._remember = redis.register_script(_REMEMBER)

    async def create(self, room: str, spec: CouponSpec) -> str | None:
        """A new coupon's id (None: the room holds MAX_COUPONS already); emits
        ``coupon_created``."""
        fields: list[str | int] = [
            "title", spec.title, "off", spec.off_cents, "min", spec.min_cents,
            "quota", spec.quota, "per_user", spec.per_user, "task", spec.task.value,
            "watch_min", spec.watch_min,
        ]  # fmt: skip
        shared = [keys.room(room, "cps")]
        while True:
            cid = "c" + secrets.token_hex(4)
            event = msgpack.packb({"t": "coupon_created", "cp": cid, **spec.public()})
            args = [channel(room), self.bus.history_max, secrets.token_hex(8), cid, MAX_COUPONS,
                    event, *fields]  # fmt: skip
            call_keys = [*shared, coupon_keys(room, cid)[0], *self.bus.emit_keys(room)]
            done = int(await self._create(keys=call_keys, args=args))
            if done < 0:
                return None
            if done:
                return cid

    async def claim(
        self, room: str, cid: str, user: str, now: int, task_done: bool, key: str
    ) -> ClaimResult:
        """One buyer's claim (see :data:`CLAIM`); rides the turn's pipeline."""
        base = coupon_keys(room, cid)[0]
        reply = await run(
            self._claim,
            [keys.room(room, "meta"), base, f"{base}:c", f"{base}:k", keys.room(room, "buys"),
             keys.room(room, "orders")],
            [cid, user, now, "1" if task_done else "0", key],
            self.batcher,
        )  # fmt: skip
        code = int(reply[0])
        if code < 0:
            return ClaimResult(code, arg=int(reply[1]) if len(reply) > 1 else 0)
        v, claimed, quota, mine = (int(x) for x in reply[1:5])
        return ClaimResult(code, CouponState(cid, v, claimed, quota), mine)

    async def all(self, room: str) -> list[dict[str, Any]]:
        """The room's coupons (spec and state), oldest id first."""
        ids = sorted(as_str(c) for c in await self.redis.smembers(keys.room(room, "cps")))
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(coupon_keys(room, cid)[0])
        out = []
        for cid, raw in zip(ids, await pipe.execute(), strict=True):
            m = {as_str(k): as_str(v) for k, v in raw.items()}
            if not m:
                continue
            state = CouponState(cid, int(m["v"]), int(m["claimed"]), int(m["quota"]))
            out.append({
                "cp": cid, "title": m["title"], "off_cents": int(m["off"]),
                "min_cents": int(m["min"]), "quota": int(m["quota"]),
                "per_user": int(m["per_user"]), "task": m["task"],
                "watch_min": int(m["watch_min"]), **state.public(),
            })  # fmt: skip
        return out

    async def remember(self, room: str, user: str, since: int, commented: bool) -> None:
        """Keep a session's coupon-task facts past its connection: when the user
        arrived (the earliest of their sessions) and whether they commented, so a
        phone that reconnects (a network switch) does not start its tasks again."""
        args = [user, since, "1" if commented else "0", MAX_TASK_FACTS]
        await run(self._remember, [keys.room(room, "coupon:tasks")], args, self.batcher)

    async def task_facts(self, room: str, user: str) -> tuple[int | None, bool]:
        """(earliest arrival kept, ever commented) of ``user`` in the room."""
        w, c = await self.redis.hmget(keys.room(room, "coupon:tasks"), [f"w:{user}", f"c:{user}"])
        return (int(w) if w is not None else None), c is not None

    async def task_of(self, room: str, cid: str) -> tuple[str, int] | None:
        """(task, watch minutes) of coupon ``cid``, or None: no such coupon."""
        task, watch = await self.redis.hmget(coupon_keys(room, cid)[0], ["task", "watch_min"])
        return None if task is None else (as_str(task), int(watch or 0))

    async def holdings(
        self, room: str, user: str, sale: str | None, cids: list[str]
    ) -> tuple[int, dict[str, int]]:
        """What ``user`` holds, in one round trip: units of flash sale ``sale`` (0 without
        one) and copies claimed of each coupon in ``cids`` (those held only)."""
        pipe = self.redis.pipeline(transaction=False)
        if sale is not None:
            pipe.hget(keys.room(room, f"flash:{sale}:b"), user)
        for cid in cids:
            pipe.hget(coupon_keys(room, cid)[1], user)
        replies = await pipe.execute() if sale is not None or cids else []
        units = int(replies.pop(0) or 0) if sale is not None else 0
        claimed = {cid: int(n) for cid, n in zip(cids, replies, strict=True) if n is not None}
        return units, claimed

    async def held(self, room: str, cid: str, user: str) -> tuple[int, int]:
        """(claimed, used) of ``user`` for coupon ``cid``."""
        _, kc, ku = coupon_keys(room, cid)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(kc, user)
        pipe.hget(ku, user)
        claimed, used = await pipe.execute()
        return int(claimed or 0), int(used or 0)
