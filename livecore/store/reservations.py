"""Reservations on Redis/Valkey: one set of user ids per room, capped, in one call.

Keys (tagged with the room): ``reserved`` (user ids). A reservation is
idempotent per user; the set leaves with the room's other keys.
"""

from __future__ import annotations

from livecore.store import keys
from livecore.store.client import StoreClient

#: Reservations one room keeps at most.
MAX_RESERVATIONS = 200_000

# KEYS: reserved | ARGV: user max  → {1|0 added, count} or {-1, count} full
_RESERVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return {0, redis.call('SCARD', KEYS[1])} end
local n = redis.call('SCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return {-1, n} end
redis.call('SADD', KEYS[1], ARGV[1])
return {1, n + 1}
"""


class ReservationStore:
    """Reserve, cancel, count."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._reserve = redis.register_script(_RESERVE)

    async def reserve(self, room: str, user: str) -> tuple[int, int]:
        """(1 added | 0 already | -1 full, count)."""
        reply = await self._reserve(
            keys=[keys.room(room, "reserved")], args=[user, MAX_RESERVATIONS]
        )
        return int(reply[0]), int(reply[1])

    async def cancel(self, room: str, user: str) -> int:
        """Drop ``user``'s reservation; the count after."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(keys.room(room, "reserved"), user)
        pipe.scard(keys.room(room, "reserved"))
        _, count = await pipe.execute()
        return int(count)

    async def status(self, room: str, user: str) -> tuple[bool, int]:
        """(whether ``user`` reserved, count)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.sismember(keys.room(room, "reserved"), user)
        pipe.scard(keys.room(room, "reserved"))
        mine, count = await pipe.execute()
        return bool(mine), int(count)
