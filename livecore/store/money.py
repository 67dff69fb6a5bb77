"""Lua shared by the group-buy and officer scripts: attribution and commission money.

Every key these functions touch is passed in by the caller's ``KEYS`` (declared
keys, so the scripts are correct on a cluster and under script flags):

- ``attrib`` (hash): buyer → ``officer|unix time`` of the ?ref= touch;
- ``recruiters`` (hash): officer → the officer who recruited them;
- ``stats`` (hash): per officer ``p:<o>`` pending cents, ``c:<o>`` confirmed
  cents, ``r:<o>`` referrals;
- ``board`` (sorted set): officer → pending + confirmed cents (all time);
- ``week`` (sorted set, expires): the same, for what was credited (net) in the
  current ISO week (周度分享之星).

Commission entries of one group live in the group's ledger hash
(``gb:<id>:led:<group>``): member → ``officer|recruiter|c1|c2|state`` with state
``p`` (pending), ``c`` (confirmed: the shop reported receipt) or ``r``
(reversed: refunded). The recruiter is empty when there is none or when the
recruiter is the buyer (no level-2 commission on one's own purchase).
"""

from __future__ import annotations

#: Seconds a weekly leaderboard is kept after its last write.
WEEK_TTL_S = 35 * 24 * 3600

MONEY_LUA = f"""
local function attributed(kattrib, user, now, window)
  local a = redis.call('HGET', kattrib, user)
  if not a then return nil end
  local officer, ts = string.match(a, '^(.+)|(%d+)$')
  if tonumber(ts) + window < now then return nil end
  return officer
end

local function money(K, officer, field, delta)
  if delta == 0 or officer == '' then return end
  redis.call('HINCRBY', K.stats, field .. ':' .. officer, delta)
  redis.call('ZINCRBY', K.board, delta, officer)
  redis.call('ZINCRBY', K.week, delta, officer)
  redis.call('EXPIRE', K.week, {WEEK_TTL_S})
end

local function shares(amount, l1, l2, recruiter)
  local c2 = 0
  if recruiter ~= '' then c2 = math.floor(amount * l2 / 10000) end
  return math.floor(amount * l1 / 10000), c2
end

local function parse_entry(raw)
  local o, r, c1, c2, st = string.match(raw, '^(.*)|(.*)|(%d+)|(%d+)|(%a)$')
  return o, r, tonumber(c1), tonumber(c2), st
end

local function entry(o, r, c1, c2, st)
  return o .. '|' .. r .. '|' .. c1 .. '|' .. c2 .. '|' .. st
end
"""
