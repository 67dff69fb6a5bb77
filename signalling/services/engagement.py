"""The node's side of the room's shared engagement: count here, flush to Valkey.

The hub calls ``signal(room, kind, user)`` for everything its audience does
(``livecore.highlights.Signal``: comment, like, vote, join, arrival,
signup); this node keeps, per room and bucket (``livecore.engagement``), the
set of users who did each kind, and every ``FLUSH_S`` adds them to the room's
HyperLogLogs in Valkey (``livecore.store.engagement``), where the node that
records the room reads every node's people. A room without a recording lease
stores nothing: the flush script refuses it, and this node then keeps none of
that room's signals for ``NO_LEASE_S`` (÷ the time scale).

The host's controls (``mark``, a product pin, 讲解) are written to the room's
control stream from whichever node the host is connected to; ``mark`` and
``explain`` answer the stream time from the lease, or None when the room's
stream is not being recorded anywhere.

Bounded: at most ``MAX_ROOMS`` rooms, ``MAX_BUCKETS`` (bucket, kind) sets per
room and ``MAX_PEOPLE`` users per set between two flushes; past a bound a
signal is dropped (a highlight score needs no more).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from livecore.engagement import Control, ControlKind, Lease, bucket
from livecore.highlights import Signal
from livecore.lru import LruDict
from livecore.store.engagement import EngagementStore

if TYPE_CHECKING:
    from signalling.node.context import NodeContext

log = logging.getLogger("livecore.engagement")
FLUSH_S = 0.25
NO_LEASE_S = 2.0
MAX_ROOMS = 10_000
MAX_BUCKETS = 512
MAX_PEOPLE = 20_000
_KINDS = frozenset(s.value for s in Signal)


class Engagement:
    """This node's ``Moments`` (see the module doc)."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.store = EngagementStore(ctx.redis)
        self.scale = ctx.settings.highlight_time_scale
        self._pending: dict[str, dict[tuple[int, str], set[str]]] = {}
        self._no_lease: LruDict[str, float] = LruDict(MAX_ROOMS)
        self._task: asyncio.Task[None] | None = None

    # -- what the hub calls ------------------------------------------------------------

    def signal(self, room: str, kind: str, user: str, n: int = 1) -> None:
        """``user`` did ``kind`` now (``n``, the taps of a like, counts as one person)."""
        if kind not in _KINDS or n <= 0:
            return
        now = self.ctx.clock.time()
        quiet_until = self._no_lease.get(room)
        if quiet_until is not None and now < quiet_until:
            return
        per = self._pending.get(room)
        if per is None:
            if len(self._pending) >= MAX_ROOMS:
                return
            per = self._pending[room] = {}
        key = (bucket(now, self.scale), kind)
        people = per.get(key)
        if people is None:
            if len(per) >= MAX_BUCKETS:
                return
            people = per[key] = set()
        if len(people) < MAX_PEOPLE:
            people.add(user)

    async def lease(self, room: str) -> Lease | None:
        return await self.store.lease(room)

    async def mark(self, room: str) -> float | None:
        """The host marked this moment: its stream seconds, or None (not recorded)."""
        return await self._control(room, ControlKind.MARK, None)

    async def product_pinned(self, room: str, product: str | None) -> None:
        """A product card was pinned (its name), or removed (None)."""
        await self._control(room, ControlKind.PIN, product)

    async def explain(self, room: str, product: str | None) -> float | None:
        """The host taps 讲解 on ``product`` (None: the explanation ends); stream seconds
        of the tap, or None when the room's stream is not being recorded."""
        kind = ControlKind.EXPLAIN if product is not None else ControlKind.EXPLAIN_END
        return await self._control(room, kind, product)

    async def costream(self, room: str, user: str) -> None:
        """A KOC went on air on this node: the node recording the room (if any) hears it."""
        await self._control(room, ControlKind.COSTREAM, user)

    async def _control(self, room: str, kind: ControlKind, product: str | None) -> float | None:
        lease = await self.store.lease(room)
        if lease is None:
            return None
        now = self.ctx.clock.time()
        await self.store.control(room, Control(kind, now, product))
        return lease.stream_time(now)

    # -- flushing ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="engagement")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.flush()

    async def flush(self) -> None:
        """Send what was counted since the last flush (one script per room)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        rooms = list(pending)
        results = await asyncio.gather(
            *(self.store.flush(room, pending[room]) for room in rooms), return_exceptions=True
        )
        until = self.ctx.clock.time() + NO_LEASE_S / self.scale  # the same detector seconds
        failed: list[BaseException] = []
        for room, result in zip(rooms, results, strict=True):
            if result is False:
                self._no_lease[room] = until
            elif isinstance(result, BaseException):
                failed.append(result)
        if failed:  # one line per flush, however many rooms (a store outage)
            log.warning("engagement of %d rooms not flushed: %s", len(failed), failed[0])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            try:
                await self.flush()
            except (RedisError, OSError) as exc:
                log.warning("engagement flush failed: %s", exc)
