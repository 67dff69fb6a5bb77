"""Orders out: the rooms' ``orders`` streams → the shop backend's webhook, at least once.

Every join, leave, formed and failed is appended to ``lc:{room}:orders`` in
the same Lua call that made it. When ``--orders-webhook`` is set, every node
runs this forwarder: it reads the streams with the consumer group
``webhook`` (so nodes share the work and each entry goes to one node), POSTs
each entry as JSON, and acknowledges it only after a 2xx answer. Entries of
a node that died, or whose delivery failed, stay pending and are claimed
again after ``RETRY_IDLE_MS`` — so nothing is lost while the backend is
down, and a delivery may repeat: the ``Idempotency-Key`` header
(``<room>:<stream id>``) is the same every time.

Each request carries ``X-Livecore-Signature: sha256=<hex>``, the HMAC-SHA256
of the raw body with ``--orders-webhook-secret``, and
``X-Livecore-Timestamp`` (Unix seconds, also inside the signed body).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from livecore.clock import Clock
from livecore.store import keys
from livecore.store.replies import as_str

log = logging.getLogger("livecore.orders")
GROUP = "webhook"
BATCH = 100
RETRY_IDLE_MS = 5_000
MAX_BACKOFF_S = 30.0


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class OrderForwarder:
    """One node's share of webhook deliveries."""

    def __init__(
        self, redis: Redis, url: str, secret: str, node_id: str, clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.url = url
        self.secret = secret.encode()
        self.consumer = node_id
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=10, transport=transport)
        self._streams: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="orders-webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await self._discover()
                moved = await self._claim_stale() + await self._read_new()
                backoff = 0.5
                if not moved:
                    await asyncio.sleep(0.5)
            except _DeliveryFailed as exc:
                log.warning("order webhook failed (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            except (RedisError, OSError) as exc:
                log.warning("orders stream unavailable (%s)", exc)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _discover(self) -> None:
        for room in await self.redis.smembers(keys.ORDER_ROOMS):
            stream = keys.room(as_str(room), "orders")
            if stream not in self._streams:
                with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                    await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
                self._streams.add(stream)

    async def _read_new(self) -> int:
        if not self._streams:
            return 0
        reply: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, dict.fromkeys(self._streams, ">"), count=BATCH
        )
        count = 0
        for stream, entries in reply or []:
            count += await self._deliver(as_str(stream), entries)
        return count

    async def _claim_stale(self) -> int:
        """Take over entries pending longer than RETRY_IDLE_MS (failed or orphaned)."""
        count = 0
        for stream in list(self._streams):
            reply: Any = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, min_idle_time=RETRY_IDLE_MS, start_id="0-0",
                count=BATCH,
            )  # fmt: skip
            count += await self._deliver(stream, reply[1])
        return count

    async def _deliver(self, stream: str, entries: list[Any]) -> int:
        room = stream.split("{", 1)[1].split("}", 1)[0]
        for entry_id, fields in entries:
            if not fields:  # deleted by trimming while pending
                await self.redis.xack(stream, GROUP, entry_id)
                continue
            eid = as_str(entry_id)
            order = {as_str(k): _value(as_str(k), as_str(v)) for k, v in fields.items()}
            now = int(self.clock.time())
            body = json.dumps(
                {"id": f"{room}:{eid}", "room": room, "sent_at": now, **order},
                ensure_ascii=False, separators=(",", ":"),
            ).encode()  # fmt: skip
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": f"{room}:{eid}",
                "X-Livecore-Event": str(order.get("type", "")),
                "X-Livecore-Timestamp": str(now),
                "X-Livecore-Signature": sign(self.secret, body),
            }
            try:
                answer = await self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise _DeliveryFailed(repr(exc)) from None
            if not 200 <= answer.status_code < 300:
                raise _DeliveryFailed(f"HTTP {answer.status_code}")
            await self.redis.xack(stream, GROUP, entry_id)
            self.delivered += 1
        return len(entries)


class _DeliveryFailed(Exception):
    pass


#: Order fields that are numbers; everything else (user ids like "007") stays a string.
NUMERIC_FIELDS = frozenset({"qty", "version", "ts", "members", "unit_cents"})


def _value(name: str, raw: str) -> int | str:
    return int(raw) if name in NUMERIC_FIELDS and raw.lstrip("-").isdigit() else raw
