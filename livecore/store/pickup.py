"""Pickup codes on Redis/Valkey: issuing and redeeming are each one Lua call.

Issuing checks, in the same step, that the user is a member of the formed
group they joined and records ``code → order`` (a repeat finds the same
entry). Redeeming marks the code used exactly once, counts it and appends a
``pickup`` entry to the room's ``orders`` stream (so the shop hears of it
through the orders webhook), atomically; a second redemption is refused with
the time of the first.

Keys (tagged with the room): ``pickup:codes`` (code → ``gid|group|user|qty``),
``pickup:done`` (code → ``ts|by``), ``pickup:stats`` (``issued``,
``redeemed``), and the group buy's ``gb:<id>:who``, ``gb:<id>:g:<group>``,
``gb:<id>:m:<group>`` and ``gb:<id>:led:<group>`` (the order's settlement:
a refunded order gets no code and its code does not redeem).
"""

from __future__ import annotations

from dataclasses import dataclass

from livecore.store import keys
from livecore.store.client import StoreClient
from livecore.store.groupbuys import ORDERS_MAXLEN
from livecore.store.replies import as_str

# KEYS: who group members codes done stats ledger | ARGV: user grp gid code
# Returns {1, qty, redeemed ts|by or ''}; {-1} not a member of that group;
# {-2} the group has not formed; {-3} the code belongs to another order;
# {-4} the order was refunded.
_ISSUE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return {-1} end
if redis.call('HGET', KEYS[2], 's') ~= 'formed' then return {-2} end
local qty = redis.call('HGET', KEYS[3], ARGV[1])
if not qty then return {-1} end
local settled = redis.call('HGET', KEYS[7], ARGV[1])
if settled and string.sub(settled, -1) == 'r' then return {-4} end
local entry = ARGV[3] .. '|' .. ARGV[2] .. '|' .. ARGV[1] .. '|' .. qty
local prev = redis.call('HGET', KEYS[4], ARGV[4])
if prev and prev ~= entry then return {-3} end
if not prev then
  redis.call('HSET', KEYS[4], ARGV[4], entry)
  redis.call('HINCRBY', KEYS[6], 'issued', 1)
end
return {1, tonumber(qty), redis.call('HGET', KEYS[5], ARGV[4]) or ''}
"""

# KEYS: codes done stats orders ledger-of-the-code's-group | ARGV: code now by maxlen
# Returns {1, entry} redeemed now; {-1} unknown code; {-2, entry, ts|by} redeemed
# before; {-3, entry} the order was refunded (nothing changes).
_REDEEM = """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return {-1} end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then return {-2, entry, prev} end
local gid, grp, user, qty = string.match(entry, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
local settled = redis.call('HGET', KEYS[5], user)
if settled and string.sub(settled, -1) == 'r' then return {-3, entry} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
redis.call('HINCRBY', KEYS[3], 'redeemed', 1)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', tonumber(ARGV[4]), '*', 'type', 'pickup', 'gb', gid,
           'group', grp, 'user', user, 'qty', qty, 'code', ARGV[1], 'by', ARGV[3], 'ts', ARGV[2])
return {1, entry}
"""


@dataclass(frozen=True, slots=True)
class Order:
    """The formed order a code belongs to."""

    gid: str
    group: str
    user: str
    qty: int

    @classmethod
    def parse(cls, raw: object) -> Order:
        gid, group, user, qty = as_str(raw).split("|")
        return cls(gid, group, user, int(qty))


#: Refusal codes of :meth:`PickupStore.issue` and :meth:`PickupStore.redeem`.
NOT_MEMBER, NOT_FORMED, COLLISION, REFUNDED = -1, -2, -3, -4
UNKNOWN, REDEEMED, ORDER_REFUNDED = -1, -2, -3


class PickupStore:
    """Issue and redeem a room's pickup codes."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._issue = redis.register_script(_ISSUE)
        self._redeem = redis.register_script(_REDEEM)

    async def group_of(self, room: str, gid: str, user: str) -> str | None:
        """The group ``user`` joined in group buy ``gid`` (None: none)."""
        grp = await self.redis.hget(keys.room(room, f"gb:{gid}:who"), user)
        return as_str(grp) if grp is not None else None

    async def issue(
        self, room: str, gid: str, grp: str, user: str, code: str
    ) -> tuple[int, int, str]:
        """(1, qty, redeemed ``ts|by`` or "") or (NOT_MEMBER | NOT_FORMED | COLLISION |
        REFUNDED, 0, "")."""
        base = f"gb:{gid}"
        reply = await self._issue(
            keys=[keys.room(room, f"{base}:who"), keys.room(room, f"{base}:g:{grp}"),
                  keys.room(room, f"{base}:m:{grp}"), keys.room(room, "pickup:codes"),
                  keys.room(room, "pickup:done"), keys.room(room, "pickup:stats"),
                  keys.room(room, f"{base}:led:{grp}")],
            args=[user, grp, gid, code],
        )  # fmt: skip
        if int(reply[0]) < 0:
            return int(reply[0]), 0, ""
        return 1, int(reply[1]), as_str(reply[2])

    async def redeem(
        self, room: str, code: str, now: int, by: str
    ) -> tuple[int, Order | None, str]:
        """(1, order, "") redeemed now; (REDEEMED, order, ``ts|by``) before;
        (ORDER_REFUNDED, order, "") refused, nothing changed; (UNKNOWN, None, "")."""
        codes = keys.room(room, "pickup:codes")
        raw = await self.redis.hget(codes, code)
        if raw is None:
            return UNKNOWN, None, ""
        # A code's entry never changes once issued, so its group's ledger key read
        # here is the one the script checks, declared (cluster-safe).
        known = Order.parse(raw)
        reply = await self._redeem(
            keys=[codes, keys.room(room, "pickup:done"),
                  keys.room(room, "pickup:stats"), keys.room(room, "orders"),
                  keys.room(room, f"gb:{known.gid}:led:{known.group}")],
            args=[code, now, by, ORDERS_MAXLEN],
        )  # fmt: skip
        code_ = int(reply[0])
        if code_ == UNKNOWN:
            return UNKNOWN, None, ""
        return code_, Order.parse(reply[1]), as_str(reply[2]) if len(reply) > 2 else ""

    async def stats(self, room: str) -> tuple[int, int]:
        """(codes issued, codes redeemed) in the room."""
        issued, redeemed = await self.redis.hmget(
            keys.room(room, "pickup:stats"), ["issued", "redeemed"]
        )
        return int(issued or 0), int(redeemed or 0)
