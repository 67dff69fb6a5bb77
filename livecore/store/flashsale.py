"""Flash sales on Redis/Valkey: every start, buy and end is one Lua call.

A buy checks the sale (started, not ended, stock left), the buyer's limit and,
when the buyer hands in a coupon, that they claimed one not yet used; then it
moves the sold count and the version, records the buyer's quantity, appends
the order to the room's ``orders`` stream (so the webhook forwarder hands it
to the shop) and, on the last unit, flips the sale to ``sold_out`` and emits
``flash_sold_out``, all in the same atomic step: stock never goes below 0 and
no buyer passes the limit, however many nodes race. A retried buy that carries
the same idempotency ``key`` answers what the first one did and changes nothing.

Keys (all tagged with the room, all passed as ``KEYS``): ``flash`` (the room's
current sale: id, spec, sold, v, status), ``flash:<id>:b`` (user → qty),
``flash:<id>:k`` (user|key → qty of a buy that succeeded), the coupon keys of
:mod:`livecore.store.coupons` and ``orders``. A sale's keys expire a day after
its end. One sale at a time per room; ``v`` grows across a room's sales, so
the newest state of a room's flash sale is the one with the highest ``v``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import msgpack

from livecore.flashsale import FlashSpec, FlashStatus
from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.bus import EMIT_LUA, Bus, channel
from livecore.store.client import StoreClient
from livecore.store.coupons import coupon_keys
from livecore.store.index import ScoredIndex
from livecore.store.replies import as_str

#: Flash sales whose end the sweep looks for, as ``room|id`` by end time.
FLASH_DUE = "flashdue"
#: A sale's buyer keys outlive its end by this long (the shop has the orders).
KEEP_S = 24 * 3600

_COMMON = EMIT_LUA

# KEYS: 1 flash 2 stream 3 offset 4 epoch 5 orders
# ARGV: 1 channel 2 maxlen 3 candidate 4 now 5 id 6 payload (without v) 7 keep, 8… fields
# Returns {1, v} started; {-1, id} another sale is still on.
START = (
    _COMMON
    + """
local now = tonumber(ARGV[4])
local cur = redis.call('HMGET', KEYS[1], 'id', 'status', 'ends', 'v')
if cur[1] and cur[2] ~= 'ended' and tonumber(cur[3]) > now then return {-1, cur[1]} end
local v = tonumber(cur[4] or '0') + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[5], 'v', v, 'sold', 0, 'status', 'open', unpack(ARGV, 8))
local event = cmsgpack.unpack(ARGV[6])
event.v = v
emit(KEYS[2], KEYS[3], KEYS[4], ARGV[1], cmsgpack.pack(event), ARGV[2], ARGV[3])
local m = redis.call('HMGET', KEYS[1], 'product', 'price', 'stock', 'limit', 'starts', 'ends')
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'type', 'flash_started', 'fs', ARGV[5],
           'product', m[1], 'unit_cents', m[2], 'stock', m[3], 'limit', m[4], 'starts_at', m[5],
           'ends_at', m[6], 'ts', now)
return {1, v}
"""
)

# KEYS: 1 flash 2 buyers 3 idem 4 orders 5 stream 6 offset 7 epoch 8 coupon 9 claims 10 used
# ARGV: 1 channel 2 maxlen 3 candidate 4 id 5 user 6 qty 7 key 8 now 9 coupon 10 keep
# Returns {code, v, sold, stock, status, mine}: 1 bought, 0 the same key bought already;
# refusals {-1} no such sale, {-2, starts} not started, {-3} ended, {-4} sold out,
# {-5, room left under the limit}, {-6, left} fewer left than asked, {-7} coupon not held,
# {-8, min cents} the order is under the coupon's threshold.
BUY = (
    _COMMON
    + """
local fid, user, qty, key, now = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local coupon = ARGV[9]
local m = redis.call('HMGET', KEYS[1], 'id', 'v', 'sold', 'stock', 'status', 'starts', 'ends',
                     'limit', 'price', 'product')
if m[1] ~= fid then return {-1} end
local v, sold, stock, status = tonumber(m[2]), tonumber(m[3]), tonumber(m[4]), m[5]
local ikey = user .. '|' .. key
if key ~= '' then
  local done = redis.call('HGET', KEYS[3], ikey)
  if done then
    local mine = tonumber(redis.call('HGET', KEYS[2], user) or '0')
    return {0, v, sold, stock, status, mine}
  end
end
if status == 'ended' or now >= tonumber(m[7]) then return {-3} end
if sold >= stock then return {-4} end
if now < tonumber(m[6]) then return {-2, tonumber(m[6])} end
local had = tonumber(redis.call('HGET', KEYS[2], user) or '0')
local limit = tonumber(m[8])
if had + qty > limit then return {-5, limit - had} end
if qty > stock - sold then return {-6, stock - sold} end
local price = tonumber(m[9])
local off = 0
if coupon ~= '' then
  local c = redis.call('HMGET', KEYS[8], 'off', 'min')
  local held = tonumber(redis.call('HGET', KEYS[9], user) or '0')
  local used = tonumber(redis.call('HGET', KEYS[10], user) or '0')
  if not c[1] or held <= used then return {-7} end
  if price * qty < tonumber(c[2]) then return {-8, tonumber(c[2])} end
  off = math.min(tonumber(c[1]), price * qty)
  redis.call('HINCRBY', KEYS[10], user, 1)
end
sold = sold + qty
v = v + 1
if sold >= stock then status = 'sold_out' end
redis.call('HSET', KEYS[1], 'sold', sold, 'v', v, 'status', status)
local mine = redis.call('HINCRBY', KEYS[2], user, qty)
redis.call('EXPIREAT', KEYS[2], tonumber(m[7]) + tonumber(ARGV[10]))
if key ~= '' then
  redis.call('HSET', KEYS[3], ikey, qty)
  redis.call('EXPIREAT', KEYS[3], tonumber(m[7]) + tonumber(ARGV[10]))
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'type', 'flash', 'fs', fid,
           'product', m[10], 'user', user, 'qty', qty, 'unit_cents', price, 'coupon', coupon,
           'coupon_off_cents', off, 'total_cents', price * qty - off, 'key', key, 'ts', now)
if status == 'sold_out' then
  local payload = cmsgpack.pack({t = 'flash_sold_out', fs = fid, sold = sold, v = v})
  emit(KEYS[5], KEYS[6], KEYS[7], ARGV[1], payload, ARGV[2], ARGV[3])
end
return {1, v, sold, stock, status, mine}
"""
)

# KEYS: 1 flash 2 stream 3 offset 4 epoch 5 orders
# ARGV: 1 channel 2 maxlen 3 candidate 4 id 5 now 6 force ('1': the host stops it)
# Returns {1, v, sold, stock} ended now; {0} not this sale or ended already; {-2} not due.
END = (
    _COMMON
    + """
local fid, now = ARGV[4], tonumber(ARGV[5])
local m = redis.call('HMGET', KEYS[1], 'id', 'v', 'sold', 'stock', 'status', 'ends')
if m[1] ~= fid or m[5] == 'ended' then return {0} end
if ARGV[6] ~= '1' and now < tonumber(m[6]) then return {-2} end
local v = tonumber(m[2]) + 1
redis.call('HSET', KEYS[1], 'status', 'ended', 'v', v)
local sold, stock = tonumber(m[3]), tonumber(m[4])
local payload = cmsgpack.pack({t = 'flash_ended', fs = fid, sold = sold, stock = stock, v = v})
emit(KEYS[2], KEYS[3], KEYS[4], ARGV[1], payload, ARGV[2], ARGV[3])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'type', 'flash_ended', 'fs', fid,
           'sold', sold, 'stock', stock, 'ts', now)
return {1, v, sold, stock}
"""
)


@dataclass(frozen=True, slots=True)
class FlashState:
    """A sale's progress as clients see it (``st.flash``)."""

    id: str
    version: int
    sold: int
    stock: int
    status: str

    def public(self) -> dict[str, Any]:
        return {"fs": self.id, "v": self.version, "sold": self.sold,
                "left": max(0, self.stock - self.sold), "s": self.status}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BuyResult:
    """What a buy did: ``code`` as documented on :data:`BUY`; ``arg`` of a refusal."""

    code: int
    state: FlashState | None = None
    mine: int = 0
    arg: int = 0


class FlashSaleStore:
    """Start, buy, end and read a room's flash sale."""

    def __init__(self, redis: StoreClient, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self.due_index = ScoredIndex(redis, FLASH_DUE)
        self._start = redis.register_script(START)
        self._buy = redis.register_script(BUY)
        self._end = redis.register_script(END)

    @staticmethod
    def key(room: str, part: str = "") -> str:
        return keys.room(room, f"flash{part}")

    def _emit(self, room: str) -> list[Any]:
        return [channel(room), self.bus.history_max, secrets.token_hex(8)]

    def _shared(self, room: str) -> list[str]:
        return [self.key(room), *self.bus.emit_keys(room), keys.room(room, "orders")]

    async def start(self, room: str, spec: FlashSpec, now: int) -> tuple[str, int] | str:
        """Start a sale: (id, v), or the id of the sale still on (one at a time)."""
        fid = "f" + secrets.token_hex(4)
        # the end is indexed first: a crash after it leaves an entry the sweep drops
        await self.due_index.add(f"{room}|{fid}", spec.ends_at)
        event = msgpack.packb({"t": "flash_started", "fs": fid, **spec.public()})
        fields: list[Any] = ["product", spec.product, "price", spec.price_cents,
                             "stock", spec.stock, "limit", spec.limit,
                             "starts", spec.starts_at, "ends", spec.ends_at]  # fmt: skip
        reply = await self._start(
            keys=self._shared(room), args=[*self._emit(room), now, fid, event, KEEP_S, *fields]
        )
        if int(reply[0]) < 0:
            await self.due_index.remove(f"{room}|{fid}")
            return as_str(reply[1])
        return fid, int(reply[1])

    async def buy(
        self, room: str, fid: str, user: str, qty: int, key: str, coupon: str, now: int
    ) -> BuyResult:
        """One buyer's tap of 抢 (see :data:`BUY`); rides the turn's pipeline."""
        ck = coupon_keys(room, coupon or "-")
        reply = await run(
            self._buy,
            [self.key(room), self.key(room, f":{fid}:b"), self.key(room, f":{fid}:k"),
             keys.room(room, "orders"), *self.bus.emit_keys(room), *ck],
            [*self._emit(room), fid, user, qty, key, now, coupon, KEEP_S],
            self.batcher,
        )  # fmt: skip
        code = int(reply[0])
        if code < 0:
            return BuyResult(code, arg=int(reply[1]) if len(reply) > 1 else 0)
        v, sold, stock, status, mine = reply[1:6]
        state = FlashState(fid, int(v), int(sold), int(stock), as_str(status))
        return BuyResult(code, state, int(mine))

    async def end(self, room: str, fid: str, now: int, *, force: bool = False) -> FlashState | int:
        """End the sale (``force``: the host stops it before its time): its final
        state for the one caller that ended it, else 0 (nothing to end) or -2 (not due)."""
        reply = await self._end(
            keys=self._shared(room), args=[*self._emit(room), fid, now, "1" if force else "0"]
        )
        code = int(reply[0])
        if code <= 0:
            if code == 0:
                await self.due_index.remove(f"{room}|{fid}")
            return code
        await self.due_index.remove(f"{room}|{fid}")
        return FlashState(fid, int(reply[1]), int(reply[2]), int(reply[3]), FlashStatus.ENDED)

    async def due(self, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """(room, sale) pairs whose end has come, across all rooms."""
        out = []
        for member in await self.due_index.upto(now, limit):
            room, _, fid = member.partition("|")
            out.append((room, fid))
        return out

    async def current(self, room: str) -> dict[str, Any] | None:
        """The room's latest sale as a snapshot carries it (spec and state), or None."""
        raw = await self.redis.hgetall(self.key(room))
        if not raw:
            return None
        m = {as_str(k): as_str(v) for k, v in raw.items()}
        state = FlashState(m["id"], int(m["v"]), int(m["sold"]), int(m["stock"]), m["status"])
        return {
            **state.public(), "product": m["product"], "price_cents": int(m["price"]),
            "stock": int(m["stock"]), "limit": int(m["limit"]), "starts_at": int(m["starts"]),
            "ends_at": int(m["ends"]),
        }  # fmt: skip

    async def final(
        self, room: str, fid: str
    ) -> tuple[FlashState, dict[str, int], set[str]] | None:
        """A sale that can sell no more (sold out or ended): its state, its holders (user →
        units) and the ``user|key`` of every buy, which no longer change; None while
        it still sells (or is not the room's sale)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hmget(self.key(room), ["id", "v", "sold", "stock", "status"])
        pipe.hgetall(self.key(room, f":{fid}:b"))
        pipe.hkeys(self.key(room, f":{fid}:k"))
        (fs, v, sold, stock, status), holders, done = await pipe.execute()
        if fs is None or as_str(fs) != fid or as_str(status) not in ("sold_out", "ended"):
            return None
        state = FlashState(fid, int(v), int(sold), int(stock), as_str(status))
        return state, {as_str(k): int(n) for k, n in holders.items()}, {as_str(k) for k in done}

    async def bought(self, room: str, fid: str, user: str) -> int:
        """How many of sale ``fid`` ``user`` bought."""
        return int(await self.redis.hget(self.key(room, f":{fid}:b"), user) or 0)
