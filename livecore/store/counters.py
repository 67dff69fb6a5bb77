"""Room counters shared by all nodes: likes (a running total) and viewers (sum of nodes)."""

from __future__ import annotations

from livecore.store import keys
from livecore.store.client import StoreClient

# Each node reports its own count with a timestamp; reports older than
# ARGV[4] seconds (a node that died) are dropped from the sum.
# KEYS: viewers hash | ARGV: node count now stale_after
_VIEWERS = """
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  local c, ts = string.match(all[i + 1], '(%d+):(%d+)')
  if tonumber(ts) + tonumber(ARGV[4]) < tonumber(ARGV[3]) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + tonumber(c)
  end
end
return total
"""


class Counters:
    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._viewers = redis.register_script(_VIEWERS)

    async def add_likes(self, room: str, n: int) -> int:
        """Add ``n`` taps (0 reads) and return the room's total."""
        key = keys.room(room, "likes")
        if n == 0:
            return int(await self.redis.get(key) or 0)
        return int(await self.redis.incrby(key, n))

    async def report_viewers(
        self, room: str, node: str, count: int, now: int, stale_s: int = 10
    ) -> int:
        """Report this node's viewers of ``room``; returns the room's total over live nodes."""
        return int(
            await self._viewers(keys=[keys.room(room, "viewers")], args=[node, count, now, stale_s])
        )
