"""Batches on Valkey: the hash chain (one Lua script per append), reports, rooms.

Every key of a batch carries ``{b/<batch>}`` as its hash tag, see
:func:`key` and docs/architecture.md (Store layout).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from livecore.errors import ErrorCode, LivecoreError
from livecore.store.client import StoreClient
from livecore.trace import events
from livecore.trace.chain import GENESIS, Head, canonical, link, record_hash, sign_head

PREFIX = "lc"
BATCHES_INDEX = f"{PREFIX}:batches"
#: Report files: bytes each, files per batch.
MAX_REPORT_BYTES = 1024 * 1024
MAX_REPORTS = 8
REPORT_TYPES = ("application/pdf", "image/png", "image/jpeg")
#: Rooms a batch remembers being sold in, and how long a pin feeds a room live.
MAX_ROOMS = 20
PIN_TTL_S = 12 * 3600
#: An append that loses a race re-reads the chain and tries again this often.
APPEND_TRIES = 3


def key(batch: str, part: str) -> str:
    """``lc:{b/<batch>}:<part>``: ``/`` is not in the id alphabet, so no room's
    tag (``{<room>}``) can ever equal a batch's."""
    return f"{PREFIX}:{{b/{batch}}}:{part}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# KEYS: head, chain, reports. ARGV: prev, seq, record, hash, head json, max events,
# report sha ('' for none), owner, created_at.
_APPEND = """
local cur = redis.call('HGET', KEYS[1], 'hash')
if ARGV[2] == '0' then
  if cur then return 'exists' end
else
  if not cur then return 'missing' end
  if cur ~= ARGV[1] then return 'conflict' end
end
local n = redis.call('LLEN', KEYS[2])
if n ~= tonumber(ARGV[2]) then return 'conflict' end
if n >= tonumber(ARGV[6]) then return 'full' end
if ARGV[7] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[7]) == 0 then return 'no_report' end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'hash', ARGV[4], 'seq', ARGV[2], 'sig', ARGV[5])
if ARGV[2] == '0' then redis.call('HSET', KEYS[1], 'owner', ARGV[8], 'created_at', ARGV[9]) end
return 'ok'
"""

# KEYS: reports hash, report key. ARGV: sha, meta, bytes, max files.
_PUT_REPORT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'dup' end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return 'full' end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 'ok'
"""

# KEYS: pinned zset, rooms set. ARGV: room, now, max rooms.
_PIN = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 and
   redis.call('SCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('SADD', KEYS[2], ARGV[1])
end
return 1
"""


class BatchStore:
    """Register batches, append events to their chains, keep their reports."""

    def __init__(self, redis: StoreClient, signing_key: Ed25519PrivateKey) -> None:
        self.redis = redis
        self.signing_key = signing_key
        self._append = redis.register_script(_APPEND)
        self._put_report = redis.register_script(_PUT_REPORT)
        self._pin = redis.register_script(_PIN)

    async def register(
        self, batch: str, record: dict[str, Any], *, owner: str, now: int
    ) -> dict[str, Any]:
        """Record 0 of a new chain; ``batch_exists`` if the id is taken."""
        linked = link(record, batch=batch, seq=0, prev=GENESIS)
        linked["recorded_at"] = now
        answer = await self._write(batch, linked, GENESIS, owner=owner, now=now)
        if answer == "exists":
            raise LivecoreError(ErrorCode.BATCH_EXISTS, f"batch {batch!r} is already registered")
        await self.redis.zadd(BATCHES_INDEX, {batch: now})
        if "room" in record["data"]:
            await self.redis.sadd(key(batch, "rooms"), record["data"]["room"])
        return linked

    async def append(self, batch: str, record: dict[str, Any], *, now: int) -> dict[str, Any]:
        """Append a life event after checking it may follow the chain; one script
        checks that the chain still ends where we read it, appends and moves the
        signed head. A lost race (another append came first) is retried."""
        for _ in range(APPEND_TRIES):
            chain = await self.records(batch)
            if not chain:
                raise LivecoreError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch!r}")
            events.check_follows(chain, record)
            body = record
            if record["type"] == events.EventType.TESTED.value:
                body = events.with_report(record, await self._report_meta(batch, record))
            linked = link(body, batch=batch, seq=len(chain), prev=record_hash(chain[-1]))
            linked["recorded_at"] = now
            if len(canonical(linked)) > events.MAX_RECORD_BYTES:
                raise LivecoreError(
                    ErrorCode.INVALID_FIELD, f"event: over {events.MAX_RECORD_BYTES} bytes"
                )
            answer = await self._write(batch, linked, linked["prev"], owner="", now=now)
            if answer == "ok":
                return linked
            if answer == "full":
                raise LivecoreError(
                    ErrorCode.BATCH_FULL, f"a batch holds at most {events.MAX_EVENTS} events"
                )
            if answer == "no_report":
                raise LivecoreError(ErrorCode.REPORT_NOT_FOUND, "data.report: not uploaded")
        raise LivecoreError(ErrorCode.CHAIN_CONFLICT, "the chain moved while appending; retry")

    async def _write(
        self, batch: str, linked: dict[str, Any], prev: str, *, owner: str, now: int
    ) -> str:
        digest = record_hash(linked)
        head = sign_head(self.signing_key, batch, linked["seq"], digest, now)
        report = ""
        if linked["type"] == events.EventType.TESTED.value:
            report = linked["data"]["report"]["sha256"]
        answer = await self._append(
            keys=[key(batch, "head"), key(batch, "chain"), key(batch, "reports")],
            args=[
                prev, linked["seq"], canonical(linked), digest, json.dumps(head.to_dict()),
                events.MAX_EVENTS, report, owner, now,
            ],
        )  # fmt: skip
        return _text(answer)

    async def records(self, batch: str) -> list[dict[str, Any]]:
        """The chain's records as stored (empty for an unknown batch)."""
        raw = await self.redis.lrange(key(batch, "chain"), 0, events.MAX_EVENTS)
        return [json.loads(r) for r in raw]

    async def head(self, batch: str) -> tuple[Head, str] | None:
        """The signed head and the batch's owner, or None."""
        data = await self.redis.hmget(key(batch, "head"), ["sig", "owner"])
        if data[0] is None:
            return None
        return Head.from_dict(json.loads(data[0])), _text(data[1] or b"")

    async def chain(self, batch: str) -> tuple[list[dict[str, Any]], Head, str]:
        """Records, signed head and owner, read in one round trip."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lrange(key(batch, "chain"), 0, events.MAX_EVENTS)
        pipe.hmget(key(batch, "head"), ["sig", "owner"])
        raw, head = await pipe.execute()
        if not raw or head[0] is None:
            raise LivecoreError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch!r}")
        records = [json.loads(r) for r in raw]
        return records, Head.from_dict(json.loads(head[0])), _text(head[1] or b"")

    async def put_report(self, batch: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Store a report file under its SHA-256 (a repeat is the same report)."""
        if content_type not in REPORT_TYPES:
            raise LivecoreError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"a report is one of {', '.join(REPORT_TYPES)}"
            )
        if not data:
            raise LivecoreError(ErrorCode.INVALID_FIELD, "report: the file is empty")
        sha = hashlib.sha256(data).hexdigest()
        meta = {"sha256": sha, "size": len(data), "type": content_type}
        answer = _text(
            await self._put_report(
                keys=[key(batch, "reports"), key(batch, f"report:{sha}")],
                args=[sha, json.dumps(meta), data, MAX_REPORTS],
            )
        )
        if answer == "full":
            raise LivecoreError(
                ErrorCode.BATCH_FULL, f"a batch holds at most {MAX_REPORTS} reports"
            )
        return meta

    async def _report_meta(self, batch: str, record: dict[str, Any]) -> dict[str, Any]:
        sha = record["data"]["report"]
        raw = await self.redis.hget(key(batch, "reports"), sha)
        if raw is None:
            raise LivecoreError(
                ErrorCode.REPORT_NOT_FOUND, f"data.report: no report {sha} uploaded to this batch"
            )
        meta: dict[str, Any] = json.loads(raw)
        return meta

    async def report(self, batch: str, sha: str) -> tuple[bytes, dict[str, Any]] | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(key(batch, "reports"), sha)
        pipe.get(key(batch, f"report:{sha}"))
        meta, data = await pipe.execute()
        if meta is None or data is None:
            return None
        return bytes(data), json.loads(meta)

    async def pin(self, batch: str, room: str, *, now: int) -> None:
        """The host pinned ``batch`` in ``room``: its live readings go there for 12 h,
        and the room joins the batch's "sold in" list (at most 20 rooms)."""
        await self._pin(
            keys=[key(batch, "pinned"), key(batch, "rooms")], args=[room, now, MAX_ROOMS]
        )

    async def unpin(self, batch: str, room: str) -> None:
        await self.redis.zrem(key(batch, "pinned"), room)

    async def rooms(self, batch: str) -> list[str]:
        """Rooms the batch was sold in (sorted)."""
        return sorted(_text(r) for r in await self.redis.smembers(key(batch, "rooms")))

    async def pinned_rooms(self, batch: str, *, now: int) -> list[str]:
        found = await self.redis.zrangebyscore(key(batch, "pinned"), now - PIN_TTL_S, "+inf")
        return [_text(r) for r in found]

    async def bytes_used(self, batch: str) -> int:
        """Valkey memory of every key of the batch (MEMORY USAGE, summed)."""
        total = 0
        async for name in self.redis.scan_iter(match=key(batch, "*"), count=1000):
            total += int(await self.redis.memory_usage(name, samples=0) or 0)
        return total
