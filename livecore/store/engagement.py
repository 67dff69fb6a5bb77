"""A room's engagement shared by every node, for its highlights (``livecore.engagement``).

- ``lc:{room}:hl:lease`` (string with a TTL): the :class:`Lease` of the node
  recording the room's stream; refreshed by that node, deleted when its
  stream ends.
- ``lc:{room}:hl:<bucket>:<kind>`` (HyperLogLog, ``BUCKET_TTL_S``): the users
  who did ``kind`` in that bucket, added by every node. ``flush`` is one
  script that adds nothing while the room has no lease, so rooms that are
  not recorded cost one round trip per flush and no memory.
- ``lc:{room}:hl:controls`` (stream, the last ``CONTROLS_CAP``): the host's
  marks, pins and 讲解 taps, from whichever node the host is connected to.

Every key carries the room's hash tag (one slot on a Valkey Cluster) and
expires on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from livecore.engagement import Control, Lease
from livecore.store import keys
from livecore.store.client import StoreClient

BUCKET_TTL_S = 120
"""A bucket outlives any reader's lag by far (the recording node reads every ~0.5 s)."""
CONTROLS_CAP = 200
CONTROLS_TTL_S = 6 * 3600
PFADD_CHUNK = 500
"""Users per PFADD inside the script (Lua's ``unpack`` has a stack limit)."""

# KEYS: lease, bucket keys... | ARGV: ttl_ms, then per bucket key: n, n users
_FLUSH = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[1])
local a = 2
for i = 2, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  local j = 0
  while j < n do
    local m = math.min({PFADD_CHUNK}, n - j)
    redis.call('PFADD', KEYS[i], unpack(ARGV, a + j, a + j + m - 1))
    j = j + m
  end
  a = a + n
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return 1
"""


# KEYS: bucket keys (one slot: the room's hash tag) | the PFCOUNT of each, in order.
# (A script, because redis-py's cluster pipeline refuses PFCOUNT.)
_COUNTS = """
local out = {}
for i = 1, #KEYS do out[i] = redis.call('PFCOUNT', KEYS[i]) end
return out
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class EngagementStore:
    """The lease, the per-bucket people counts and the controls of rooms."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis
        self._flush = redis.register_script(_FLUSH)
        self._counts = redis.register_script(_COUNTS)

    # -- the lease -------------------------------------------------------------------

    async def hold(self, room: str, lease: Lease, ttl_s: int) -> None:
        """Set or refresh ``room``'s lease (the recording node, every few seconds)."""
        await self.redis.set(keys.room(room, "hl:lease"), lease.to_json(), ex=ttl_s)

    async def release(self, room: str, lease: Lease) -> None:
        """Delete the lease if it is still ``lease`` (a newer stream's stays)."""
        key = keys.room(room, "hl:lease")
        raw = await self.redis.get(key)
        if raw is not None and Lease.from_json(raw) == lease:
            await self.redis.delete(key)

    async def lease(self, room: str) -> Lease | None:
        raw = await self.redis.get(keys.room(room, "hl:lease"))
        return None if raw is None else Lease.from_json(raw)

    # -- people per bucket -------------------------------------------------------------

    async def flush(self, room: str, people: Mapping[tuple[int, str], Iterable[str]]) -> bool:
        """Add ``{(bucket, kind): users}``; False (nothing stored) when ``room`` has no lease."""
        if not people:
            return False
        bucket_keys = [keys.room(room, "hl:lease")]
        args: list[str | int] = [BUCKET_TTL_S * 1000]
        for (b, kind), users in people.items():
            members = list(users)
            if not members:
                continue
            bucket_keys.append(keys.room(room, f"hl:{b}:{kind}"))
            args.append(len(members))
            args.extend(members)
        if len(bucket_keys) == 1:
            return False
        return bool(await self._flush(keys=bucket_keys, args=args))

    async def counts(
        self, room: str, first: int, last: int, kinds: Sequence[str]
    ) -> list[dict[str, int]]:
        """People per kind in buckets ``first .. last - 1`` (a dict per bucket, no zeros)."""
        if last <= first:
            return []
        names = [keys.room(room, f"hl:{b}:{kind}") for b in range(first, last) for kind in kinds]
        values = await self._counts(keys=names, args=[])
        out: list[dict[str, int]] = []
        for i in range(last - first):
            row = values[i * len(kinds) : (i + 1) * len(kinds)]
            out.append({k: int(v) for k, v in zip(kinds, row, strict=True) if int(v)})
        return out

    # -- the host's controls -----------------------------------------------------------

    async def control(self, room: str, control: Control) -> None:
        key = keys.room(room, "hl:controls")
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(key, {"c": control.to_json()}, maxlen=CONTROLS_CAP, approximate=False)
        pipe.expire(key, CONTROLS_TTL_S)
        await pipe.execute()

    async def last_control_id(self, room: str) -> str:
        """The id of the newest control (``0-0`` when none): a new reader starts after it."""
        entries = await self.redis.xrevrange(keys.room(room, "hl:controls"), count=1)
        return _text(entries[0][0]) if entries else "0-0"

    async def controls(self, room: str, after: str, limit: int = 100) -> tuple[str, list[Control]]:
        """Controls after the id ``after``, oldest first, and the id to read after next
        (damaged entries are skipped, not read again)."""
        entries = await self.redis.xrange(
            keys.room(room, "hl:controls"), min=f"({after}", max="+", count=limit
        )
        out: list[Control] = []
        for entry_id, fields in entries or []:
            after = _text(entry_id)
            raw = fields.get(b"c", fields.get("c")) if isinstance(fields, dict) else None
            control = Control.from_json(raw) if raw is not None else None
            if control is not None:
                out.append(control)
        return after, out
