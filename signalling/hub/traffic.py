"""``livecore serve --record-trace DIR``: the room channel's traffic into audience traces.

The hub tells :class:`TrafficRecorder` what each connection did once the node
accepted it (a ``hello``, a message that its handler did not refuse, a
disconnect). Each room gets a :class:`livecore.audience.recorder.TraceRecorder`
(anonymised: no user id, comment texts as their length unless the operator
passes ``--record-text``; bounded in events, time and files), closed when the
room goes idle on this node. Files are written by a thread, never on the loop.
At most ``max_rooms`` rooms are recorded at once; others are counted as
skipped. :class:`NoTraffic` is the default: nothing recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any

from livecore import wire
from livecore.audience.recorder import TraceRecorder
from livecore.audience.trace import Kind, Trace, write_trace
from livecore.clock import Clock
from livecore.tokens import Claims, Role

log = logging.getLogger("livecore.traffic")

#: Room-channel messages as trace events: the audience's and the host's context.
KINDS = {
    wire.ClientType.COMMENT: Kind.COMMENT,
    wire.ClientType.LIKE: Kind.LIKE,
    wire.ClientType.VOTE: Kind.VOTE,
    wire.ClientType.GROUPBUY_JOIN: Kind.GROUP_JOIN,
    wire.ClientType.GROUPBUY_LEAVE: Kind.GROUP_LEAVE,
    wire.ClientType.OFFICER_APPLY: Kind.OFFICER_APPLY,
    wire.ClientType.POLL_OPEN: Kind.POLL_OPEN,
    wire.ClientType.GROUPBUY_OPEN: Kind.GROUPBUY_OPEN,
    wire.ClientType.CARD: Kind.PRODUCT_PIN,
}


def event_of(message: wire.Message) -> tuple[Kind, int, str | None] | None:
    """(kind, value, comment text) of an accepted message, or None if traces skip it.
    Pure: a product card is a pin (its price is the value); a price drop is decided by
    the recorder, which knows the last pin."""
    kind = KINDS.get(message.type)
    f = message.fields
    if kind is None or (kind is Kind.PRODUCT_PIN and f.get("kind") != "product"):
        return None
    if kind is Kind.COMMENT:
        return kind, 0, str(f.get("text", ""))
    value = {
        Kind.LIKE: f.get("n", 1),
        Kind.VOTE: f.get("option", 0),
        Kind.GROUP_JOIN: f.get("qty", 1),
        Kind.POLL_OPEN: len(f.get("options", [])),
        Kind.GROUPBUY_OPEN: f.get("price_cents", 0),
        Kind.PRODUCT_PIN: f.get("price_cents", 0),
    }.get(kind, 0)
    return kind, int(value) if isinstance(value, int) else 0, None


class NoTraffic:
    """A node that records no traffic."""

    def joined(self, room: str, claims: Claims, community: str | None, resumed: bool) -> None:
        return None

    def message(
        self, room: str, claims: Claims, community: str | None, message: wire.Message
    ) -> None:
        return None

    def left(self, room: str, claims: Claims, community: str | None) -> None:
        return None

    def room_idle(self, room: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class TrafficRecorder(NoTraffic):
    """Records every room's traffic into ``directory`` (see the module doc)."""

    def __init__(
        self, directory: Path, clock: Clock, *, keep_text: bool = False, max_rooms: int = 1000
    ) -> None:
        self.directory = directory
        self.clock = clock
        self.keep_text = keep_text
        self.max_rooms = max_rooms
        self.skipped = 0
        self._rooms: OrderedDict[str, TraceRecorder] = OrderedDict()
        self._pins: dict[str, int] = {}
        self._writes: set[asyncio.Future[Any]] = set()

    def _recorder(self, room: str) -> TraceRecorder | None:
        found = self._rooms.get(room)
        if found is None:
            if len(self._rooms) >= self.max_rooms:
                self.skipped += 1
                return None
            found = self._rooms[room] = TraceRecorder(
                self.directory, room, clock=self.clock, keep_text=self.keep_text,
                write=self._write_later,
            )  # fmt: skip
        return found

    def _write_later(self, path: Path, trace: Trace) -> None:
        """Write a finished file in a thread; failures are logged, never raised."""
        future = asyncio.get_running_loop().run_in_executor(None, write_trace, path, trace)
        self._writes.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[Any]) -> None:
        self._writes.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("could not write a traffic trace: %r", future.exception())

    def joined(self, room: str, claims: Claims, community: str | None, resumed: bool) -> None:
        recorder = self._recorder(room)
        if recorder is not None:
            kind = Kind.RECONNECT if resumed else Kind.JOIN
            recorder.record(kind, claims.user, host=claims.role is Role.HOST, community=community)

    def message(
        self, room: str, claims: Claims, community: str | None, message: wire.Message
    ) -> None:
        event = event_of(message)
        recorder = self._recorder(room) if event is not None else None
        if event is None or recorder is None:
            return
        kind, value, text = event
        if kind is Kind.PRODUCT_PIN:
            last = self._pins.get(room)
            self._pins[room] = value
            if last is not None and value < last:
                kind = Kind.PRICE_DROP
        recorder.record(kind, claims.user, host=claims.role is Role.HOST, community=community,
                        value=value, text=text)  # fmt: skip

    def left(self, room: str, claims: Claims, community: str | None) -> None:
        recorder = self._rooms.get(room)
        if recorder is not None:
            recorder.record(Kind.LEAVE, claims.user, host=claims.role is Role.HOST,
                            community=community)  # fmt: skip

    def room_idle(self, room: str) -> None:
        """The room left this node: write its trace and forget it."""
        recorder = self._rooms.pop(room, None)
        self._pins.pop(room, None)
        if recorder is not None:
            recorder.close()

    async def aclose(self) -> None:
        """Write every room's trace and wait for the files."""
        for room in list(self._rooms):
            self.room_idle(room)
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
