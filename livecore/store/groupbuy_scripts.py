"""The group-buy Lua scripts (sources only; :mod:`livecore.store.groupbuys` runs them).

Each script is one atomic state change and touches only the keys its caller
passes in ``KEYS`` (the layout is in docs/architecture.md, "Store layout").
"""

from __future__ import annotations

from livecore.store.bus import EMIT_LUA
from livecore.store.money import MONEY_LUA

COMMON = (
    EMIT_LUA
    + MONEY_LUA
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

-- Does some member of the group still count enough invitees for the bonus?
local function bonus_holds(kinv, kmembers, need)
  if need <= 0 then return false end
  local inv = redis.call('HGETALL', kinv)
  for i = 1, #inv, 2 do
    if tonumber(inv[i + 1]) >= need and redis.call('HEXISTS', kmembers, inv[i]) == 1 then
      return true
    end
  end
  return false
end
"""
)

# KEYS: meta open stream offset epoch
# ARGV: channel maxlen candidate gid payload field value ...
# (the deadline index is written before this script, outside the room's slot)
OPEN = (
    COMMON
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('SADD', KEYS[2], ARGV[4])
emit(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[5], ARGV[2], ARGV[3])
return 1
"""
)

# KEYS: 1 meta 2 group 3 members 4 inv 5 invby 6 who 7 att 8 led 9 buys 10 orders
#       11 stream 12 offset 13 epoch 14 groups 15 attrib 16 recruiters 17 stats 18 board 19 week
# ARGV: channel maxlen candidate gid grp user qty inviter now window
JOIN = (
    COMMON
    + """
local gid, grp, user = ARGV[4], ARGV[5], ARGV[6]
local qty, inviter, now, window = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local K = {stats = KEYS[17], board = KEYS[18], week = KEYS[19]}
local meta = load_meta(KEYS[1])
if not meta then return {-1} end
if meta.status ~= 'open' or tonumber(meta.deadline) <= now then return {-2} end
if qty > tonumber(meta.max_qty) then return {-3, tonumber(meta.max_qty)} end
local elsewhere = redis.call('HGET', KEYS[6], user)
if elsewhere and elsewhere ~= grp then return {-7, elsewhere} end
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
  redis.call('SADD', KEYS[14], grp)
  redis.call('HSET', KEYS[6], user, grp)
  redis.call('HINCRBY', KEYS[9], user, 1)
  local officer = attributed(KEYS[15], user, now, window)
  if officer then redis.call('HSET', KEYS[7], user, officer) end
end
redis.call('HSET', KEYS[3], user, qty)
local q = redis.call('HINCRBY', KEYS[2], 'q', qty - (tonumber(prev) or 0))
local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
local bonus = redis.call('HGET', KEYS[2], 'b') or '0'
if not prev and inviter ~= '' then
  redis.call('HSET', KEYS[5], user, inviter)
  redis.call('HINCRBY', KEYS[4], inviter, 1)
end
if not prev and bonus ~= '1' and bonus_holds(KEYS[4], KEYS[3], tonumber(meta.bonus_invites)) then
  bonus = '1'
  redis.call('HSET', KEYS[2], 'b', '1')
end
order(KEYS[10], {'type', 'join', 'gb', gid, 'group', grp, 'user', user, 'qty', qty,
                 'version', v, 'ts', now})
local l1, l2 = tonumber(meta.l1), tonumber(meta.l2)
local function credit(member, amount)
  local officer = redis.call('HGET', KEYS[7], member)
  if not officer then return end
  local recruiter = redis.call('HGET', KEYS[16], officer) or ''
  if recruiter == member then recruiter = '' end
  local c1, c2 = shares(amount, l1, l2, recruiter)
  redis.call('HSET', KEYS[8], member, entry(officer, recruiter, c1, c2, 'p'))
  money(K, officer, 'p', c1)
  money(K, recruiter, 'p', c2)
end
if status == 'open' and n >= tonumber(meta.target) then
  status = 'formed'
  local unit = unit_price(meta, n, bonus)
  redis.call('HSET', KEYS[2], 's', 'formed', 'p', unit)
  local members = redis.call('HGETALL', KEYS[3])
  for i = 1, #members, 2 do credit(members[i], unit * tonumber(members[i + 1])) end
  order(KEYS[10], {'type', 'formed', 'gb', gid, 'group', grp, 'members', n, 'qty', q,
                   'unit_cents', unit, 'ts', now})
  local payload = cmsgpack.pack({t = 'groupbuy_formed', gb = gid, group = grp, members = n,
                                 qty = q, unit_cents = unit})
  emit(KEYS[11], KEYS[12], KEYS[13], ARGV[1], payload, ARGV[2], ARGV[3])
elseif status == 'formed' and not prev then
  local unit = unit_price(meta, n, bonus)
  local was = tonumber(redis.call('HGET', KEYS[2], 'p'))
  if unit ~= was then
    -- Everyone pays the group's current price: reprice the earlier members'
    -- commission in the same step (pending and confirmed alike, not reversed).
    local led = redis.call('HGETALL', KEYS[8])
    for i = 1, #led, 2 do
      local o, r, c1, c2, st = parse_entry(led[i + 1])
      if st ~= 'r' then
        local n1, n2 = shares(unit * tonumber(redis.call('HGET', KEYS[3], led[i])), l1, l2, r)
        money(K, o, st, n1 - c1)
        money(K, r, st, n2 - c2)
        redis.call('HSET', KEYS[8], led[i], entry(o, r, n1, n2, st))
      end
    end
    redis.call('HSET', KEYS[2], 'p', unit)
    order(KEYS[10], {'type', 'repriced', 'gb', gid, 'group', grp, 'members', n,
                     'unit_cents', unit, 'prev_cents', was, 'ts', now})
    local payload = cmsgpack.pack({t = 'groupbuy_repriced', gb = gid, group = grp, members = n,
                                   unit_cents = unit, prev_cents = was})
    emit(KEYS[11], KEYS[12], KEYS[13], ARGV[1], payload, ARGV[2], ARGV[3])
  end
  credit(user, unit * qty)
end
return {1, v, n, q, status, bonus}
"""
)

# KEYS: 1 meta 2 group 3 members 4 inv 5 invby 6 who 7 att 8 buys 9 orders
# ARGV: gid grp user now
LEAVE = (
    COMMON
    + """
local user, now = ARGV[3], tonumber(ARGV[4])
local meta = load_meta(KEYS[1])
if not meta then return {-1} end
if meta.status ~= 'open' or tonumber(meta.deadline) <= now then return {-2} end
local status = redis.call('HGET', KEYS[2], 's') or 'open'
local prev = redis.call('HGET', KEYS[3], user)
if not prev then
  local g = redis.call('HMGET', KEYS[2], 'v', 'n', 'q', 'b')
  return {0, tonumber(g[1] or '0'), tonumber(g[2] or '0'), tonumber(g[3] or '0'), status,
          g[4] or '0'}
end
if status ~= 'open' then return {-6} end
redis.call('HDEL', KEYS[3], user)
redis.call('HDEL', KEYS[6], user)
redis.call('HDEL', KEYS[7], user)
if redis.call('HINCRBY', KEYS[8], user, -1) <= 0 then redis.call('HDEL', KEYS[8], user) end
local n = redis.call('HINCRBY', KEYS[2], 'n', -1)
local q = redis.call('HINCRBY', KEYS[2], 'q', -tonumber(prev))
local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
local inviter = redis.call('HGET', KEYS[5], user)
if inviter then
  redis.call('HDEL', KEYS[5], user)
  if redis.call('HINCRBY', KEYS[4], inviter, -1) <= 0 then redis.call('HDEL', KEYS[4], inviter) end
end
local bonus = redis.call('HGET', KEYS[2], 'b') or '0'
if bonus == '1' and not bonus_holds(KEYS[4], KEYS[3], tonumber(meta.bonus_invites)) then
  bonus = '0'
  redis.call('HSET', KEYS[2], 'b', '0')
end
order(KEYS[9], {'type', 'leave', 'gb', ARGV[1], 'group', ARGV[2], 'user', user,
                'qty', tonumber(prev), 'version', v, 'ts', now})
return {1, v, n, q, status, bonus}
"""
)

# KEYS: 1 meta 2 groups 3 open 4 orders 5 stream 6 offset 7 epoch, 8… one per group
# ARGV: channel maxlen candidate gid now, 6… the group names (KEYS 8… order)
# Returns 0 nothing open to close, -1 a group appeared (read again), -2 not due
# yet, else 1 + the groups that failed. The caller drops the deadline index entry
# on 0 and above.
EXPIRE = (
    COMMON
    + """
local gid, now = ARGV[4], tonumber(ARGV[5])
local meta = load_meta(KEYS[1])
if not meta or meta.status ~= 'open' then
  redis.call('SREM', KEYS[3], gid)
  return 0
end
if tonumber(meta.deadline) > now then return -2 end
if redis.call('SCARD', KEYS[2]) ~= #ARGV - 5 then return -1 end
redis.call('HSET', KEYS[1], 'status', 'closed')
redis.call('SREM', KEYS[3], gid)
local failed = 0
for i = 6, #ARGV do
  local grp, kgroup = ARGV[i], KEYS[i + 2]
  if (redis.call('HGET', kgroup, 's') or 'open') == 'open' then
    redis.call('HSET', kgroup, 's', 'failed')
    redis.call('HINCRBY', kgroup, 'v', 1)
    local n = tonumber(redis.call('HGET', kgroup, 'n') or '0')
    if n > 0 then
      failed = failed + 1
      order(KEYS[4], {'type', 'failed', 'gb', gid, 'group', grp, 'members', n, 'ts', now})
      local payload = cmsgpack.pack({t = 'groupbuy_failed', gb = gid, group = grp, members = n})
      emit(KEYS[5], KEYS[6], KEYS[7], ARGV[1], payload, ARGV[2], ARGV[3])
    end
  end
end
local payload = cmsgpack.pack({t = 'groupbuy_closed', gb = gid})
emit(KEYS[5], KEYS[6], KEYS[7], ARGV[1], payload, ARGV[2], ARGV[3])
return failed + 1
"""
)

# KEYS: 1 group 2 members 3 led 4 stats 5 board 6 week 7 orders
# ARGV: gid grp user outcome now
SETTLE = (
    COMMON
    + """
local gid, grp, user, outcome, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local K = {stats = KEYS[4], board = KEYS[5], week = KEYS[6]}
if redis.call('HGET', KEYS[1], 's') ~= 'formed' or redis.call('HEXISTS', KEYS[2], user) == 0 then
  return {-1}
end
local raw = redis.call('HGET', KEYS[3], user)
if not raw then return {0, 'none'} end
local o, r, c1, c2, st = parse_entry(raw)
local to = (outcome == 'received') and 'c' or 'r'
if st == to then return {0, st} end
if st == 'r' then return {-2, st} end
if to == 'c' then
  for _, pair in ipairs({{o, c1}, {r, c2}}) do
    if pair[1] ~= '' then
      redis.call('HINCRBY', K.stats, 'p:' .. pair[1], -pair[2])
      redis.call('HINCRBY', K.stats, 'c:' .. pair[1], pair[2])
    end
  end
else
  money(K, o, st, -c1)
  money(K, r, st, -c2)
end
redis.call('HSET', KEYS[3], user, entry(o, r, c1, c2, to))
order(KEYS[7], {'type', 'commission', 'gb', gid, 'group', grp, 'user', user,
                'outcome', outcome, 'officer', o, 'cents', c1, 'recruiter', r, 'recruiter_cents',
                c2, 'ts', now})
return {1, to}
"""
)
