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
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import httpx
from redis.exceptions import RedisError, ResponseError

from livecore.clock import Clock
from livecore.store import index, keys
from livecore.store.client import StoreClient, by_slot
from livecore.store.index import SetIndex
from livecore.store.replies import as_str

log = logging.getLogger("livecore.orders")
GROUP = "webhook"
BATCH = 100
RETRY_IDLE_MS = 5_000
MAX_BACKOFF_S = 30.0
#: Rooms with orders looked at per loop beyond the hot ones (SSCAN window).
SCAN_WINDOW = 200
#: Streams remembered as hot (they had work lately); the oldest are forgotten first.
MAX_HOT = 5_000
#: A stream with no work for this long leaves the hot set (the scan still visits it).
HOT_FOR_S = 600.0
#: Answers that will not change on retry: the entry goes to the dead letters.
PERMANENT = frozenset(range(400, 500)) - {408, 425, 429}
#: Dead letters kept per room.
DEAD_MAXLEN = 10_000


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def dead_key(room: str) -> str:
    """The room's dead letters: orders the backend refused for good (operator re-drives)."""
    return keys.room(room, "orders:dead")


class OrderForwarder:
    """One node's share of webhook deliveries.

    Work per loop is bounded: the streams that had work lately (at most
    ``MAX_HOT``) plus a window of ``SCAN_WINDOW`` rooms from an SSCAN cursor that
    walks every room with orders in turn, so a room that was never hot (or whose
    entries a dead node left pending) is still visited, and nothing is read for
    rooms that have nothing to send. One entry the backend refuses for good (a
    4xx) is moved to the room's dead letters with the answer, counted, logged,
    and delivery goes on; a transient failure (5xx, timeout) backs off that
    stream only.
    """

    def __init__(
        self, redis: StoreClient, url: str, secret: str, node_id: str, clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
        on_dead_letter: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        self.redis = redis
        self.url = url
        self.secret = secret.encode()
        self.consumer = node_id
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=10, transport=transport)
        self._hot: OrderedDict[str, float] = OrderedDict()  # stream -> last work (monotonic)
        self._retry_at: dict[str, float] = {}  # stream -> when a failed stream may try again
        self._backoff: dict[str, float] = {}
        self._grouped: OrderedDict[str, None] = OrderedDict()  # consumer group known to exist
        self._order_rooms = SetIndex(redis, index.ORDER_ROOMS)
        self._task: asyncio.Task[None] | None = None
        self._on_dead = on_dead_letter
        self.delivered = 0
        self.dead_lettered = 0

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
                moved = await self.step()
                backoff = 0.5
                if not moved:
                    await asyncio.sleep(0.5)
            except (RedisError, OSError) as exc:
                log.warning("orders stream unavailable (%s)", exc)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def step(self) -> int:
        """One pass over the hot streams and the next scan window; entries handled."""
        now = time.monotonic()
        streams = [*self._hot, *await self._scan()]
        due = [s for s in dict.fromkeys(streams) if self._retry_at.get(s, 0.0) <= now]
        for stream in due:
            await self._ensure_group(stream)
        moved = 0
        for stream in due:
            moved += await self._claim_stale(stream)
        ready = [s for s in due if self._retry_at.get(s, 0.0) <= now]
        for group in by_slot(self.redis, ready):  # one XREADGROUP per cluster slot
            reply: Any = await self.redis.xreadgroup(
                GROUP, self.consumer, dict.fromkeys(group, ">"), count=BATCH
            )
            for stream, entries in reply or []:
                moved += await self._deliver(as_str(stream), entries)
        for stream, last in list(self._hot.items()):
            if now - last > HOT_FOR_S:
                del self._hot[stream]
        for stream, at in list(self._retry_at.items()):
            if at <= now and stream not in self._hot:
                del self._retry_at[stream]
                self._backoff.pop(stream, None)
        return moved

    async def _scan(self) -> list[str]:
        rooms = await self._order_rooms.scan(SCAN_WINDOW)
        return [keys.room(room, "orders") for room in rooms]

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._grouped:
            return
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        self._grouped[stream] = None
        if len(self._grouped) > MAX_HOT + SCAN_WINDOW:
            self._grouped.popitem(last=False)

    async def _claim_stale(self, stream: str) -> int:
        """Take over entries pending longer than RETRY_IDLE_MS (failed or orphaned)."""
        reply: Any = await self.redis.xautoclaim(
            stream, GROUP, self.consumer, min_idle_time=RETRY_IDLE_MS, start_id="0-0",
            count=BATCH,
        )  # fmt: skip
        return await self._deliver(stream, reply[1])

    def _mark_hot(self, stream: str) -> None:
        self._hot[stream] = time.monotonic()
        self._hot.move_to_end(stream)
        while len(self._hot) > MAX_HOT:
            self._hot.popitem(last=False)

    async def _deliver(self, stream: str, entries: list[Any]) -> int:
        if not entries:
            return 0
        self._mark_hot(stream)
        room = stream.split("{", 1)[1].split("}", 1)[0]
        for done, (entry_id, fields) in enumerate(entries):
            if not fields:  # deleted by trimming while pending
                await self.redis.xack(stream, GROUP, entry_id)
                continue
            status = await self._post(room, as_str(entry_id), fields, stream)
            if status is None:
                return done
            if status in PERMANENT:
                await self._dead_letter(stream, room, entry_id, fields, status)
                continue
            await self.redis.xack(stream, GROUP, entry_id)
            self._backoff.pop(stream, None)
            self._retry_at.pop(stream, None)
            self.delivered += 1
        return len(entries)

    async def _post(self, room: str, eid: str, fields: dict[Any, Any], stream: str) -> int | None:
        """POST one order: its status, or None after a transient failure (backed off)."""
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
            self._failed(stream, repr(exc))
            return None
        if answer.status_code in PERMANENT or 200 <= answer.status_code < 300:
            return answer.status_code
        self._failed(stream, f"HTTP {answer.status_code}")
        return None

    def _failed(self, stream: str, why: str) -> None:
        """Back off this stream only; the others keep delivering."""
        backoff = min(MAX_BACKOFF_S, self._backoff.get(stream, 0.25) * 2)
        self._backoff[stream] = backoff
        self._retry_at[stream] = time.monotonic() + backoff
        log.warning("order webhook failed for %s (%s); retrying in %.1f s", stream, why, backoff)

    async def _dead_letter(
        self, stream: str, room: str, entry_id: Any, fields: dict[Any, Any], status: int
    ) -> None:
        """Move one refused entry aside (with the answer) and acknowledge it, atomically."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(
            dead_key(room), {**fields, b"_id": entry_id, b"_status": status},
            maxlen=DEAD_MAXLEN, approximate=True,
        )  # fmt: skip
        pipe.xack(stream, GROUP, entry_id)
        await pipe.execute()
        self.dead_lettered += 1
        if self._on_dead is not None:
            self._on_dead(room)
        log.error(
            "order %s:%s refused for good by the webhook (HTTP %d): moved to %s",
            room, as_str(entry_id), status, dead_key(room),
        )  # fmt: skip


async def redrive(redis: StoreClient, room: str, limit: int = 1000) -> int:
    """Put up to ``limit`` dead letters of ``room`` back on its orders stream (new ids, so
    the forwarder sends them again) and remove them from the dead letters."""
    entries: Any = await redis.xrange(dead_key(room), count=limit)
    for entry_id, fields in entries:
        original = {k: v for k, v in fields.items() if not as_str(k).startswith("_")}
        pipe = redis.pipeline(transaction=True)
        pipe.xadd(keys.room(room, "orders"), original, maxlen=100_000, approximate=True)
        pipe.xdel(dead_key(room), entry_id)
        await pipe.execute()
    return len(entries)


#: Order fields that are numbers; everything else (user ids like "007") stays a string.
NUMERIC_FIELDS = frozenset(
    {"qty", "version", "ts", "members", "unit_cents", "prev_cents", "cents", "recruiter_cents",
     "stock", "limit", "sold", "starts_at", "ends_at", "total_cents", "coupon_off_cents",
     "off_cents", "min_cents"}
)  # fmt: skip


def _value(name: str, raw: str) -> int | str:
    return int(raw) if name in NUMERIC_FIELDS and raw.lstrip("-").isdigit() else raw
