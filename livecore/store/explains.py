"""A product's 讲解 clips, ranked by the product clicks each one brought.

``lc:{room}:explain:<product key>`` is a sorted set of clip ids; a score is
``clicks + created_at / 1e10`` (the fraction breaks ties in favour of the
newer clip and never reaches 1). ``add`` is one script: the new clip joins
(the live's latest explanation is always shown), and past ``PER_PRODUCT`` the
lowest-ranked of the others leaves (its id is returned so the caller deletes
its record and files). ``click`` counts only a clip that is
ranked. The product key is a digest of its name (names are free text).
"""

from __future__ import annotations

import hashlib
from typing import Any

from livecore.store import keys
from livecore.store.client import StoreClient

PER_PRODUCT = 3
"""Platforms show at most 3 explanation clips per product."""
TTL_S = 30 * 24 * 3600

_ADD = """
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
local out = {}
if over <= 0 then return out end
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if over <= 0 then break end
  if m ~= ARGV[2] then
    redis.call('ZREM', KEYS[1], m)
    table.insert(out, m)
    over = over - 1
  end
end
return out
"""
_CLICK = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
return math.floor(tonumber(redis.call('ZINCRBY', KEYS[1], 1, ARGV[1])))
"""


def product_key(product: str) -> str:
    return hashlib.sha256(product.encode()).hexdigest()[:24]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ExplainStore:
    """Rank, count and list the explanation clips of a room's products."""

    def __init__(self, redis: StoreClient, per_product: int = PER_PRODUCT) -> None:
        self.redis = redis
        self.per_product = per_product
        self._add = redis.register_script(_ADD)
        self._click = redis.register_script(_CLICK)

    @staticmethod
    def _key(room: str, product: str) -> str:
        return keys.room(room, f"explain:{product_key(product)}")

    async def add(self, room: str, product: str, clip: str, created_at: int) -> list[str]:
        """Rank ``clip`` (no clicks yet); the ids that fell off the product's top list."""
        dropped = await self._add(
            keys=[self._key(room, product)],
            args=[created_at / 1e10, clip, self.per_product, TTL_S],
        )
        return [_text(d) for d in dropped]

    async def click(self, room: str, product: str, clip: str) -> int | None:
        """One product click from ``clip``: its clicks now, or None when it is not ranked."""
        n = int(await self._click(keys=[self._key(room, product)], args=[clip]))
        return None if n < 0 else n

    async def ranked(self, room: str, product: str) -> list[tuple[str, int]]:
        """``(clip id, clicks)``, most clicked first."""
        rows: Any = await self.redis.zrevrange(self._key(room, product), 0, -1, withscores=True)
        return [(_text(member), int(score)) for member, score in rows]

    async def remove(self, room: str, product: str, clip: str) -> None:
        await self.redis.zrem(self._key(room, product), clip)
