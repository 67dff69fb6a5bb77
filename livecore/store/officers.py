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

from livecore.groupbuy import ATTRIBUTION_WINDOW_S
from livecore.store import keys
from livecore.store.client import StoreClient
from livecore.store.money import MONEY_LUA
from livecore.store.replies import as_str

_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L

# KEYS: codes attrib stats | ARGV: code user now window
_ATTRIBUTE = (
    MONEY_LUA
    + """
local officer = redis.call('HGET', KEYS[1], ARGV[1])
if not officer then return {-1} end
if officer == ARGV[2] then return {-2} end
local now, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local who = attributed(KEYS[2], ARGV[2], now, window)
if who then return {0, who} end
redis.call('HSET', KEYS[2], ARGV[2], officer .. '|' .. now)
redis.call('HINCRBY', KEYS[3], 'r:' .. officer, 1)
return {1, officer}
"""
)

# KEYS: buys codes attrib officer recruiters | ARGV: user code now window
_APPLY = (
    MONEY_LUA
    + """
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') <= 0 then return {-1} end
local existing = redis.call('HGET', KEYS[4], 'code')
if existing then return {0, existing} end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then return {-2} end
local recruiter = attributed(KEYS[3], ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])) or ''
redis.call('HSET', KEYS[4], 'code', ARGV[2], 'recruiter', recruiter, 'since', ARGV[3])
if recruiter ~= '' then redis.call('HSET', KEYS[5], ARGV[1], recruiter) end
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
    #: Pending + confirmed: what the officer has earned and not lost to refunds.
    earned_cents: int
    #: Credited at formation, waiting for the buyer's receipt.
    pending_cents: int
    #: The shop reported receipt: final.
    confirmed_cents: int
    referrals: int
    rank: int | None

    def public(self, links: dict[str, str]) -> dict[str, Any]:
        return {
            "user": self.user, "code": self.code, "recruiter": self.recruiter or None,
            "earned_cents": self.earned_cents, "pending_cents": self.pending_cents,
            "confirmed_cents": self.confirmed_cents, "referrals": self.referrals, "rank": self.rank,
            "links": links,
        }  # fmt: skip


def new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


class ShareOfficerStore:
    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._attribute = redis.register_script(_ATTRIBUTE)
        self._apply = redis.register_script(_APPLY)

    async def attribute(self, room: str, code: str, user: str, now: int) -> tuple[int, str]:
        """1 attributed, 0 kept an earlier touch, -1 unknown code, -2 own code."""
        reply = await self._attribute(
            keys=[keys.room(room, "officer_codes"), keys.room(room, "attrib"),
                  keys.room(room, "officer_stats")],
            args=[code, user, now, ATTRIBUTION_WINDOW_S],
        )  # fmt: skip
        return int(reply[0]), as_str(reply[1]) if len(reply) > 1 else ""

    async def apply(self, room: str, user: str, now: int) -> tuple[int, str]:
        """1 new officer, 0 already one, -1 not a buyer (code second). A buyer is a
        member of some group of the room now: joined and left is not a buyer."""
        for _ in range(5):
            reply = await self._apply(
                keys=[keys.room(room, "buys"), keys.room(room, "officer_codes"),
                      keys.room(room, "attrib"), keys.room(room, f"officer:{user}"),
                      keys.room(room, "recruiters")],
                args=[user, new_code(), now, ATTRIBUTION_WINDOW_S],
            )  # fmt: skip
            if int(reply[0]) != -2:  # -2: the random code was taken; draw again
                return int(reply[0]), as_str(reply[1]) if len(reply) > 1 else ""
        raise RuntimeError("could not draw a free referral code")

    async def get(self, room: str, user: str) -> ShareOfficer | None:
        raw = await self.redis.hgetall(keys.room(room, f"officer:{user}"))
        if not raw or b"code" not in raw:
            return None
        pending, confirmed, referrals = await self.redis.hmget(
            keys.room(room, "officer_stats"), [f"p:{user}", f"c:{user}", f"r:{user}"]
        )
        rank: Any = await self.redis.zrevrank(keys.room(room, "leaderboard"), user)
        p, c = int(pending or 0), int(confirmed or 0)
        return ShareOfficer(
            user=user,
            code=as_str(raw[b"code"]),
            recruiter=as_str(raw.get(b"recruiter", b"")),
            earned_cents=p + c,
            pending_cents=p,
            confirmed_cents=c,
            referrals=int(referrals or 0),
            rank=None if rank is None else int(rank) + 1,
        )

    async def leaderboard(
        self, room: str, top: int = 10, week: str | None = None
    ) -> list[list[Any]]:
        """[[officer, cents], ...], highest first: all time, or one ISO week
        (``2026-W49``, see :func:`livecore.store.groupbuys.iso_week`)."""
        key = keys.room(room, f"leaderboard:w:{week}" if week else "leaderboard")
        rows: Any = await self.redis.zrevrange(key, 0, top - 1, withscores=True)
        return [[as_str(user), int(score)] for user, score in rows if score > 0]
