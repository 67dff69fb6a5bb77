"""Who publishes where: origins, co-stream requests and publish grants (Valkey).

- ``lc:{room}:origins`` maps a publishing user to ``<node>|<node url>|<unix time>``
  (the node-to-node URL, ``--node-url``, that cascade pulls dial);
  the node holding the WHIP session refreshes it every couple of seconds.
  An entry older than ``ORIGIN_TTL_S`` is an origin that died: the first node
  to remove it (one atomic HDEL-if-unchanged) announces the stream's end.
- ``lc:{room}:costream:requests`` holds KOCs who asked to co-stream;
  ``lc:{room}:costream:grant:<user>`` (short TTL) lets an accepted KOC publish;
  ``lc:{room}:costream:live`` is the set of KOCs on air (bounded by the host's
  maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livecore.store import keys
from livecore.store.client import StoreClient
from livecore.store.replies import as_str

ORIGIN_TTL_S = 6
GRANT_TTL_S = 120

# KEYS: origins | ARGV: user expected-value
_DROP_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS: requests grant live | ARGV: user max ttl
_ACCEPT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[2]) then return -2 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class Origin:
    node: str
    url: str
    at: int
    raw: str

    @classmethod
    def parse(cls, raw: str) -> Origin:
        node, url, at = raw.rsplit("|", 2)
        return cls(node, url, int(at), raw)

    def is_stale(self, now: int) -> bool:
        """Whether the origin's heartbeat is older than ``ORIGIN_TTL_S`` (it died)."""
        return self.at + ORIGIN_TTL_S < now


# KEYS: requests | ARGV: user now max_pending -> 1 new, 2 already pending, 0 full
# KEYS: requests | ARGV: user now max_pending max_age
# A request older than max_age seconds is dropped when the list is full, so a
# room where 50 KOCs once asked is not closed to requests for good.
_REQUEST = """
local now, max_age = tonumber(ARGV[2]), tonumber(ARGV[4])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 2
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if now - tonumber(all[i + 1]) > max_age then redis.call('HDEL', KEYS[1], all[i]) end
  end
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], max_age)
return 1
"""

#: Seconds a co-stream request waits for the host before it lapses.
REQUEST_MAX_AGE_S = 600


class MediaStore:
    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._drop = redis.register_script(_DROP_IF_SAME)
        self._accept = redis.register_script(_ACCEPT)
        self._request = redis.register_script(_REQUEST)

    async def announce(self, room: str, user: str, node: str, url: str, now: int) -> None:
        await self.redis.hset(keys.room(room, "origins"), user, f"{node}|{url}|{now}")

    async def origins(self, room: str) -> dict[str, Origin]:
        raw: Any = await self.redis.hgetall(keys.room(room, "origins"))
        return {as_str(user): Origin.parse(as_str(value)) for user, value in raw.items()}

    async def origin(self, room: str, user: str) -> Origin | None:
        raw = await self.redis.hget(keys.room(room, "origins"), user)
        return Origin.parse(as_str(raw)) if raw else None

    async def withdraw(self, room: str, user: str, origin: Origin) -> bool:
        """Remove ``origin`` if it is still the registered one; True for the one remover."""
        return bool(await self._drop(keys=[keys.room(room, "origins")], args=[user, origin.raw]))

    async def request(self, room: str, user: str, now: int, max_pending: int = 50) -> int:
        """Record a KOC's request in one step: 1 new, 2 already pending (its time is
        renewed, no new event), 0 refused (``max_pending`` requests younger than
        ``REQUEST_MAX_AGE_S`` are waiting; older ones lapse)."""
        key = keys.room(room, "costream:requests")
        args: list[str | int] = [user, now, max_pending, REQUEST_MAX_AGE_S]
        return int(await self._request(keys=[key], args=args))

    async def decline(self, room: str, user: str) -> bool:
        return bool(await self.redis.hdel(keys.room(room, "costream:requests"), user))

    async def accept(self, room: str, user: str, max_live: int) -> int:
        """1 granted, -1 no such request, -2 the room has its maximum of co-streamers."""
        return int(
            await self._accept(
                keys=[
                    keys.room(room, "costream:requests"),
                    self._grant(room, user),
                    keys.room(room, "costream:live"),
                ],
                args=[user, max_live, GRANT_TTL_S],
            )
        )

    def _grant(self, room: str, user: str) -> str:
        return keys.room(room, f"costream:grant:{user}")

    async def may_publish(self, room: str, user: str) -> bool:
        """Whether a KOC was accepted (grant not expired) and is still on air."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self._grant(room, user))
        pipe.sismember(keys.room(room, "costream:live"), user)
        grant, live = await pipe.execute()
        return bool(grant) and bool(live)

    async def end(self, room: str, user: str) -> bool:
        """End a co-stream: the grant and the on-air mark go; True if it was on air."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._grant(room, user))
        pipe.srem(keys.room(room, "costream:live"), user)
        _, removed = await pipe.execute()
        return bool(removed)
