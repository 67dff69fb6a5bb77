"""The Lua of flash sales (:mod:`livecore.store.flashsale`): start, buy, buy in turns, end."""

from __future__ import annotations

from livecore.store.bus import EMIT_LUA

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


# One buyer's tap without a coupon, as BUY decides it; ``m`` is the sale as read, its
# v / sold / status kept up to date by the caller between taps of one call.
_TAP = """
local function tap(m, fid, user, qty, key, now, keep)
  local v, sold, stock, status = m.v, m.sold, m.stock, m.status
  local ikey = user .. '|' .. key
  if key ~= '' then
    local done = redis.call('HGET', KEYS[3], ikey)
    if done then
      local mine = tonumber(redis.call('HGET', KEYS[2], user) or '0')
      return {0, v, sold, stock, status, mine}
    end
  end
  if status == 'ended' or now >= m.ends then return {-3} end
  if sold >= stock then return {-4} end
  if now < m.starts then return {-2, m.starts} end
  local had = tonumber(redis.call('HGET', KEYS[2], user) or '0')
  if had + qty > m.limit then return {-5, m.limit - had} end
  if qty > stock - sold then return {-6, stock - sold} end
  sold = sold + qty
  v = v + 1
  if sold >= stock then status = 'sold_out' end
  m.v, m.sold, m.status = v, sold, status
  redis.call('HSET', KEYS[1], 'sold', sold, 'v', v, 'status', status)
  local mine = redis.call('HINCRBY', KEYS[2], user, qty)
  redis.call('EXPIREAT', KEYS[2], m.ends + keep)
  if key ~= '' then
    redis.call('HSET', KEYS[3], ikey, qty)
    redis.call('EXPIREAT', KEYS[3], m.ends + keep)
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'type', 'flash', 'fs', fid,
             'product', m.product, 'user', user, 'qty', qty, 'unit_cents', m.price, 'coupon', '',
             'coupon_off_cents', 0, 'total_cents', m.price * qty, 'key', key, 'ts', now)
  return {1, v, sold, stock, status, mine}
end
"""

# KEYS: 1 flash 2 buyers 3 idem 4 orders 5 stream 6 offset 7 epoch
# ARGV: 1 channel 2 maxlen 3 candidate 4 id 5 now 6 keep 7… (user, qty, key) per tap
# The taps of one sale that a node received in one loop turn, without coupons: each
# is decided in order exactly as BUY decides it (the whole call is atomic, as each
# tap was); returns one BUY reply per tap. The tap that sells the last unit emits
# ``flash_sold_out`` (once: the taps after it are refused).
BUYS = (
    _COMMON
    + _TAP
    + """
local fid, now, keep = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local r = redis.call('HMGET', KEYS[1], 'id', 'v', 'sold', 'stock', 'status', 'starts', 'ends',
                     'limit', 'price', 'product')
local out = {}
if r[1] ~= fid then
  for i = 7, #ARGV, 3 do out[#out + 1] = {-1} end
  return out
end
local m = {v = tonumber(r[2]), sold = tonumber(r[3]), stock = tonumber(r[4]), status = r[5],
           starts = tonumber(r[6]), ends = tonumber(r[7]), limit = tonumber(r[8]),
           price = tonumber(r[9]), product = r[10]}
local was = m.status
for i = 7, #ARGV, 3 do
  out[#out + 1] = tap(m, fid, ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], now, keep)
end
if was ~= 'sold_out' and m.status == 'sold_out' then
  local payload = cmsgpack.pack({t = 'flash_sold_out', fs = fid, sold = m.sold, v = m.v})
  emit(KEYS[5], KEYS[6], KEYS[7], ARGV[1], payload, ARGV[2], ARGV[3])
end
return out
"""
)

# KEYS: 1 flash 2 buyers 3 idem
# ARGV: 1 id
# A sale that sells no more, read in one atomic step: {{v, sold, stock, status}, buyers
# (HGETALL: user, qty, …), idem keys (user|key, …)}; {} while the sale ``id`` still sells
# or is not the room's. A script, not a MULTI pipeline: redis-py's cluster client queues
# each command of a transaction on a thread of its own while the node's loop waits.
FINAL = """
local s = redis.call('HMGET', KEYS[1], 'id', 'v', 'sold', 'stock', 'status')
if s[1] ~= ARGV[1] or (s[5] ~= 'sold_out' and s[5] ~= 'ended') then return {} end
return {{s[2], s[3], s[4], s[5]}, redis.call('HGETALL', KEYS[2]), redis.call('HKEYS', KEYS[3])}
"""
