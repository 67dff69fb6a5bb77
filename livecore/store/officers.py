"""Share officers (分享官): sign-up, referral codes, attribution, earnings, leaderboard.

- A viewer who has joined any group buy of the room may become an officer;
  they get a referral code (unique in the room) and links ``?ref=CODE``.
- A viewer who arrives with ``?ref=CODE`` is attributed to that officer:
  first touch wins while it is younger than the attribution window; an
  expired attribution may be replaced by a new touch. Unknown codes and an
  officer's own code are refused.
- An officer's recruiter is the officer they were attributed to when they
  signed up: the recruiter earns the second commission level on their sales.
Commission itself is credited inside the group-buy join script
(:mod:`livecore.store.groupbuys`), in the same step as the formation.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from livecore.groupbuy import ATTRIBUTION_WINDOW_S
from livecore.store import keys
from livecore.store.replies import as_str

_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L

#: An attribution is stored as ``<officer>|<unix time>``; this is the one place
#: that reads it back (the attribution and sign-up scripts here, and the
#: commission credit in :mod:`livecore.store.groupbuys`).
ATTRIBUTION_LUA = """
local function attributed(raw, now, window)
  if not raw then return nil end
  local who, ts = string.match(raw, '^(.+)|(%d+)$')
  if who and tonumber(ts) + window >= now then return who end
  return nil
end
"""

# KEYS: codes attrib | ARGV: prefix code user now window
_ATTRIBUTE = (
    ATTRIBUTION_LUA
    + """
local officer = redis.call('HGET', KEYS[1], ARGV[2])
if not officer then return {-1} end
if officer == ARGV[3] then return {-2} end
local now, window = tonumber(ARGV[4]), tonumber(ARGV[5])
local who = attributed(redis.call('HGET', KEYS[2], ARGV[3]), now, window)
if who then return {0, who} end
redis.call('HSET', KEYS[2], ARGV[3], officer .. '|' .. now)
redis.call('HINCRBY', ARGV[1] .. 'officer:' .. officer, 'referrals', 1)
return {1, officer}
"""
)

# KEYS: buyers codes attrib officer | ARGV: user code now window
_APPLY = (
    ATTRIBUTION_LUA
    + """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return {-1} end
local existing = redis.call('HGET', KEYS[4], 'code')
if existing then return {0, existing} end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then return {-2} end
local a = redis.call('HGET', KEYS[3], ARGV[1])
local recruiter = attributed(a, tonumber(ARGV[3]), tonumber(ARGV[4])) or ''
redis.call('HSET', KEYS[4], 'code', ARGV[2], 'recruiter', recruiter, 'since', ARGV[3])
redis.call('HSETNX', KEYS[4], 'earned', 0)
redis.call('HSETNX', KEYS[4], 'referrals', 0)
return {1, ARGV[2]}
"""
)


@dataclass(frozen=True, slots=True)
class ShareOfficer:
    """A room's share officer (分享官): a buyer who applied and got a referral code.

    Unrelated to the token role ``officer`` (:attr:`livecore.tokens.Role.OFFICER`).
    """

    user: str
    code: str
    recruiter: str
    earned_cents: int
    referrals: int
    rank: int | None

    def public(self, links: dict[str, str]) -> dict[str, Any]:
        return {
            "user": self.user, "code": self.code, "recruiter": self.recruiter or None,
            "earned_cents": self.earned_cents, "referrals": self.referrals, "rank": self.rank,
            "links": links,
        }  # fmt: skip


def new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


class ShareOfficerStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._attribute = redis.register_script(_ATTRIBUTE)
        self._apply = redis.register_script(_APPLY)

    async def attribute(self, room: str, code: str, user: str, now: int) -> tuple[int, str]:
        """1 attributed, 0 kept an earlier touch, -1 unknown code, -2 own code."""
        reply = await self._attribute(
            keys=[keys.room(room, "officer_codes"), keys.room(room, "attrib")],
            args=[keys.room(room, ""), code, user, now, ATTRIBUTION_WINDOW_S],
        )
        return int(reply[0]), as_str(reply[1]) if len(reply) > 1 else ""

    async def apply(self, room: str, user: str, now: int) -> tuple[int, str]:
        """1 new officer, 0 already one, -1 not a buyer (code second)."""
        for _ in range(5):
            reply = await self._apply(
                keys=[keys.room(room, "buyers"), keys.room(room, "officer_codes"),
                      keys.room(room, "attrib"), keys.room(room, f"officer:{user}")],
                args=[user, new_code(), now, ATTRIBUTION_WINDOW_S],
            )  # fmt: skip
            if int(reply[0]) != -2:  # -2: the random code was taken; draw again
                return int(reply[0]), as_str(reply[1]) if len(reply) > 1 else ""
        raise RuntimeError("could not draw a free referral code")

    async def get(self, room: str, user: str) -> ShareOfficer | None:
        raw = await self.redis.hgetall(keys.room(room, f"officer:{user}"))
        if not raw or b"code" not in raw:
            return None
        rank: Any = await self.redis.zrevrank(keys.room(room, "leaderboard"), user)
        return ShareOfficer(
            user=user,
            code=as_str(raw[b"code"]),
            recruiter=as_str(raw.get(b"recruiter", b"")),
            earned_cents=int(raw.get(b"earned", 0)),
            referrals=int(raw.get(b"referrals", 0)),
            rank=None if rank is None else int(rank) + 1,
        )

    async def leaderboard(self, room: str, top: int = 10) -> list[list[Any]]:
        """[[officer, cents], ...], highest first."""
        rows: Any = await self.redis.zrevrange(
            keys.room(room, "leaderboard"), 0, top - 1, withscores=True
        )
        return [[as_str(user), int(score)] for user, score in rows]
