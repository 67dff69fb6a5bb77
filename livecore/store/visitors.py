"""What one visitor's snapshot needs of the store about them, in one script call.

A visitor's own part of a room is spread over a few keys of the room's slot:
their share-officer record, their membership in each open group buy and
their vote in each open poll. One script reads all of it, and it goes
through the :class:`~livecore.store.batch.ScriptBatcher`, so the visitors
joining in one loop turn share one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run
from livecore.store.client import StoreClient
from livecore.store.officers import ShareOfficer
from livecore.store.replies import as_str

# KEYS: officer:<user>, officer_stats, leaderboard, then gb:<gid>:who for each
# group buy, then poll:<pid>:votes for each poll.
# ARGV: user, number of group buys.
# Reply (flat, '' for nothing): code, recruiter, pending, confirmed, referrals,
# rank (-1: none); then the group per group buy; then the vote per poll.
_READ = """
local user, g = ARGV[1], tonumber(ARGV[2])
local out = {}
local code = redis.call('HGET', KEYS[1], 'code')
if code then
  local s = redis.call('HMGET', KEYS[2], 'p:' .. user, 'c:' .. user, 'r:' .. user)
  local rank = redis.call('ZREVRANK', KEYS[3], user)
  out = {code, redis.call('HGET', KEYS[1], 'recruiter') or '', s[1] or '0', s[2] or '0',
         s[3] or '0', rank or -1}
else
  out = {'', '', '0', '0', '0', -1}
end
for i = 1, g do
  out[#out + 1] = redis.call('HGET', KEYS[3 + i], user) or ''
end
for i = 4 + g, #KEYS do
  out[#out + 1] = redis.call('HGET', KEYS[i], user) or ''
end
return out
"""

# KEYS: gb:<gid>:m:<group> of each group the user is in; ARGV: user. Quantities.
_QTY = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGET', KEYS[i], ARGV[1]) or ''
end
return out
"""


@dataclass
class Visitor:
    """One user's part of a room."""

    officer: ShareOfficer | None = None
    #: {group buy: {"group", "qty"}} of the user's memberships.
    joined: dict[str, dict[str, object]] = field(default_factory=dict)
    #: {poll: option} of the user's votes.
    votes: dict[str, int] = field(default_factory=dict)


class VisitorStore:
    def __init__(self, redis: StoreClient, batcher: ScriptBatcher | None = None) -> None:
        self.batcher = batcher
        self._read = redis.register_script(_READ)
        self._qty = redis.register_script(_QTY)

    async def read(self, room: str, user: str, gids: Sequence[str], pids: Sequence[str]) -> Visitor:
        """The user's officer record, memberships in ``gids`` and votes in ``pids``."""
        names = [keys.room(room, f"officer:{user}"), keys.room(room, "officer_stats"),
                 keys.room(room, "leaderboard"),
                 *(keys.room(room, f"gb:{gid}:who") for gid in gids),
                 *(keys.room(room, f"poll:{pid}:votes") for pid in pids)]  # fmt: skip
        args = [user, len(gids)]
        reply = [as_str(part) if isinstance(part, bytes) else part
                 for part in await run(self._read, names, args, self.batcher)]  # fmt: skip
        code, recruiter, pending, confirmed, referrals, rank = reply[:6]
        visitor = Visitor()
        if code:
            p, c = int(pending), int(confirmed)
            visitor.officer = ShareOfficer(
                user=user, code=str(code), recruiter=str(recruiter), earned_cents=p + c,
                pending_cents=p, confirmed_cents=c, referrals=int(referrals),
                rank=None if int(rank) < 0 else int(rank) + 1,
            )  # fmt: skip
        groups = {gid: str(g) for gid, g in zip(gids, reply[6 : 6 + len(gids)], strict=True) if g}
        if groups:  # a member: how many they took (a second call, only for members)
            names = [keys.room(room, f"gb:{gid}:m:{g}") for gid, g in groups.items()]
            qtys = await run(self._qty, names, [user], self.batcher)
            for (gid, group), qty in zip(groups.items(), qtys, strict=True):
                if qty not in (b"", ""):
                    visitor.joined[gid] = {"group": group, "qty": int(qty)}
        for i, pid in enumerate(pids):
            vote = reply[6 + len(gids) + i]
            if vote != "":
                visitor.votes[pid] = int(vote)
        return visitor
