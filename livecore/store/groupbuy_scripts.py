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

#: Keys of one group in JOIN's ``KEYS`` (after the SHARED ones), in this order.
GROUP_KEYS = 6
#: Arguments of one join in JOIN's ``ARGV`` (after the groups' names).
JOIN_ARGS = 4

# Every join of one group buy that a node received in one loop turn, in one call:
# the spec is read and parsed once, each join then runs the same rules in order
# (the batch is atomic, as each join was on its own).
# KEYS: 1 meta 2 who 3 buys 4 orders 5 stream 6 offset 7 epoch 8 groups 9 attrib
#       10 recruiters 11 stats 12 board 13 week, then per group (GROUP_KEYS):
#       group members inv invby att led
# ARGV: 1 channel 2 maxlen 3 candidate 4 gid 5 now 6 window 7 ngroups, the groups'
#       names, then per join (JOIN_ARGS): group index (1-based) user qty inviter
# Returns one reply per join, in order: {code, ...} as documented on GroupBuyStore.join.
JOIN = (
    COMMON
    + """
local gid, now, window = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local ngroups = tonumber(ARGV[7])
local K = {stats = KEYS[11], board = KEYS[12], week = KEYS[13]}
local meta = load_meta(KEYS[1])
local open = meta and meta.status == 'open' and tonumber(meta.deadline) > now
local max_qty = meta and tonumber(meta.max_qty)
local target = meta and tonumber(meta.target)
local l1, l2 = meta and tonumber(meta.l1), meta and tonumber(meta.l2)
local bonus_invites = meta and tonumber(meta.bonus_invites)

local function credit(G, member, amount)
  local katt, kled = G.att, G.led
  local officer = redis.call('HGET', katt, member)
  if not officer then return end
  local recruiter = redis.call('HGET', KEYS[10], officer) or ''
  if recruiter == member then recruiter = '' end
  local c1, c2 = shares(amount, l1, l2, recruiter)
  redis.call('HSET', kled, member, entry(officer, recruiter, c1, c2, 'p'))
  money(K, officer, 'p', c1)
  money(K, recruiter, 'p', c2)
end

local function join(G, user, qty, inviter)
  if not meta then return {-1} end
  if not open then return {-2} end
  if qty > max_qty then return {-3, max_qty} end
  local grp = G.name
  local kgroup, kmembers, kinv, kinvby, katt, kled = G.group, G.members, G.inv, G.invby, G.att,
                                                    G.led
  local elsewhere = redis.call('HGET', KEYS[2], user)
  if elsewhere and elsewhere ~= grp then return {-7, elsewhere} end
  local g = redis.call('HMGET', kgroup, 's', 'n', 'v', 'q', 'b')
  local status = g[1] or 'open'
  if status == 'failed' then return {-2} end
  local prev = redis.call('HGET', kmembers, user)
  if prev and tonumber(prev) == qty then
    return {0, tonumber(g[3]), tonumber(g[2]), tonumber(g[4]), status, g[5] or '0'}
  end
  if prev and status == 'formed' then return {-6} end
  if not prev and inviter ~= '' then
    if inviter == user then return {-4} end
    if redis.call('HEXISTS', kmembers, inviter) == 0 then return {-5} end
  end
  -- n, q and v were read above in this same atomic step: one HSET writes all three
  local n = tonumber(g[2] or '0')
  local q = tonumber(g[4] or '0') + qty - (tonumber(prev) or 0)
  local v = tonumber(g[3] or '0') + 1
  if not prev then
    n = n + 1
    if not g[2] then redis.call('SADD', KEYS[8], grp) end  -- the group's first member ever
    redis.call('HSET', KEYS[2], user, grp)
    redis.call('HINCRBY', KEYS[3], user, 1)
    local officer = attributed(KEYS[9], user, now, window)
    if officer then redis.call('HSET', katt, user, officer) end
  end
  redis.call('HSET', kmembers, user, qty)
  redis.call('HSET', kgroup, 'n', n, 'q', q, 'v', v)
  local bonus = g[5] or '0'
  if not prev and inviter ~= '' then
    redis.call('HSET', kinvby, user, inviter)
    redis.call('HINCRBY', kinv, inviter, 1)
  end
  if not prev and bonus ~= '1' and bonus_holds(kinv, kmembers, bonus_invites) then
    bonus = '1'
    redis.call('HSET', kgroup, 'b', '1')
  end
  order(KEYS[4], {'type', 'join', 'gb', gid, 'group', grp, 'user', user, 'qty', qty,
                  'version', v, 'ts', now})
  if status == 'open' and n >= target then
    status = 'formed'
    local unit = unit_price(meta, n, bonus)
    redis.call('HSET', kgroup, 's', 'formed', 'p', unit)
    local members = redis.call('HGETALL', kmembers)
    for i = 1, #members, 2 do credit(G, members[i], unit * tonumber(members[i + 1])) end
    order(KEYS[4], {'type', 'formed', 'gb', gid, 'group', grp, 'members', n, 'qty', q,
                    'unit_cents', unit, 'ts', now})
    local payload = cmsgpack.pack({t = 'groupbuy_formed', gb = gid, group = grp, members = n,
                                   qty = q, unit_cents = unit})
    emit(KEYS[5], KEYS[6], KEYS[7], ARGV[1], payload, ARGV[2], ARGV[3])
  elseif status == 'formed' and not prev then
    local unit = unit_price(meta, n, bonus)
    local was = tonumber(redis.call('HGET', kgroup, 'p'))
    if unit ~= was then
      -- Everyone pays the group's current price: reprice the earlier members'
      -- commission in the same step (pending and confirmed alike, not reversed).
      local led = redis.call('HGETALL', kled)
      for i = 1, #led, 2 do
        local o, r, c1, c2, st = parse_entry(led[i + 1])
        if st ~= 'r' then
          local n1, n2 = shares(unit * tonumber(redis.call('HGET', kmembers, led[i])), l1, l2, r)
          money(K, o, st, n1 - c1)
          money(K, r, st, n2 - c2)
          redis.call('HSET', kled, led[i], entry(o, r, n1, n2, st))
        end
      end
      redis.call('HSET', kgroup, 'p', unit)
      order(KEYS[4], {'type', 'repriced', 'gb', gid, 'group', grp, 'members', n,
                      'unit_cents', unit, 'prev_cents', was, 'ts', now})
      local payload = cmsgpack.pack({t = 'groupbuy_repriced', gb = gid, group = grp,
                                     members = n, unit_cents = unit, prev_cents = was})
      emit(KEYS[5], KEYS[6], KEYS[7], ARGV[1], payload, ARGV[2], ARGV[3])
    end
    credit(G, user, unit * qty)
  end
  return {1, v, n, q, status, bonus}
end

local groups = {}
for i = 1, ngroups do
  local k = 13 + (i - 1) * 6
  groups[i] = {name = ARGV[7 + i], group = KEYS[k + 1], members = KEYS[k + 2],
               inv = KEYS[k + 3], invby = KEYS[k + 4], att = KEYS[k + 5], led = KEYS[k + 6]}
end
local out = {}
for j = 8 + ngroups, #ARGV, 4 do
  out[#out + 1] = join(groups[tonumber(ARGV[j])], ARGV[j + 1], tonumber(ARGV[j + 2]),
                       ARGV[j + 3])
end
return out
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
if not raw then
  -- No commission on this order: a refund is still recorded (state r, no
  -- officer), so the order stays refunded for receipts and pickup alike.
  if outcome ~= 'refunded' then return {0, 'none'} end
  redis.call('HSET', KEYS[3], user, entry('', '', 0, 0, 'r'))
  return {1, 'none'}
end
local o, r, c1, c2, st = parse_entry(raw)
if st == 'r' and o == '' then
  if outcome == 'refunded' then return {0, 'none'} end
  return {-2, 'none'}
end
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
