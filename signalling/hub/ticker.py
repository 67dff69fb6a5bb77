"""The broadcast tick: every room's batch encoded once, the same bytes to every socket.

Two loops share the work. The tick (every ``tick_ms``) takes each room's batch
and group frames into the room's :class:`~signalling.hub.backlog.Backlog`;
the writer walks the rooms' connections in passes, ``SLICE_S`` of writes at a
time, yielding to the event loop between slices so that reads (the bus,
Valkey's replies, requests) never wait behind a whole pass. A connection gets
everything taken since its last visit in one write, so the writes per second
stay one per connection per pass however short the tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from livecore import wire
from livecore.config import Settings
from signalling.hub.backlog import Writable
from signalling.hub.room import LocalRoom
from signalling.node.metrics import Metrics

log = logging.getLogger("livecore.hub")

#: Writes between two turns of the event loop (seconds): ~300 sockets on loopback.
SLICE_S = 0.0015


class Ticker:
    """Takes and writes the hub's rooms' batches (``rooms`` is the hub's map, shared)."""

    def __init__(self, rooms: dict[str, LocalRoom], settings: Settings, metrics: Metrics) -> None:
        self.rooms = rooms
        self.settings = settings
        self.metrics = metrics
        self.running = False
        #: Monotonic time of the broadcast loop's last turn (readiness).
        self.last_beat = time.monotonic()
        #: Told each tick how late (seconds) the loop woke it (admission of hellos).
        self.on_late: Callable[[float], None] = lambda late_s: None
        self._wake = asyncio.Event()
        #: Which room's pass the next slice starts with (rooms take turns).
        self._turn = 0
        #: When the tick is due (perf_counter), and the writer's time past it: the
        #: writer's own slices are not the loop being late (the admission gate).
        self._due = 0.0
        self._written_past_due = 0.0

    async def run(self) -> None:
        """Take every room's batch once per tick; the writer runs beside it."""
        tick = self.settings.tick_ms / 1000
        writer = asyncio.get_running_loop().create_task(self._write_loop(), name="hub-write")
        try:
            while self.running:
                asked = time.monotonic()
                self._due, self._written_past_due = time.perf_counter() + tick, 0.0
                await asyncio.sleep(tick)
                self.last_beat = time.monotonic()
                late = self.last_beat - asked - tick
                self.on_late(max(0.0, late - self._written_past_due))
                for room in list(self.rooms.values()):
                    try:
                        self.flush(room)
                    except Exception:  # a bug must not stop every room's broadcasts
                        log.exception("taking room %s's batch failed", room.id)
        finally:
            writer.cancel()

    def flush(self, room: LocalRoom) -> None:
        """Take the room's batch (one frame, the same bytes for every connection) and
        each changed group's frame for its community and the hosts, to be written
        by the next slices."""
        frame = room.take_batch()
        targeted: dict[Writable, bytes] = {}
        if room.dirty_groups:
            for data, targets in room.group_frames(time.monotonic()):
                for conn in targets:
                    targeted[conn] = targeted[conn] + data if conn in targeted else data
        room.backlog.push(frame, targeted)
        if room.backlog.pending:
            self._wake.set()

    async def _write_loop(self) -> None:
        while self.running:
            self._wake.clear()
            if self.write_slice():
                await asyncio.sleep(0)  # one turn of the loop: its reads come first
            else:
                await self._wake.wait()

    def write_slice(self, slice_s: float = SLICE_S) -> bool:
        """Write for about ``slice_s``, the rooms taking turns; True if writes remain."""
        rooms = list(self.rooms.values())
        if not rooms:
            return False
        started = time.perf_counter()
        try:
            return self._write_rooms(rooms, started + slice_s)
        finally:
            self._written_past_due += max(0.0, time.perf_counter() - max(started, self._due))

    def _write_rooms(self, rooms: list[LocalRoom], deadline: float) -> bool:
        self._turn = (self._turn + 1) % len(rooms)
        busy = False
        for room in rooms[self._turn :] + rooms[: self._turn]:
            backlog = room.backlog
            if not backlog.in_pass and not backlog.start_pass():
                continue
            try:
                self._write(room, None if backlog.overfull else deadline)
            except Exception:  # a bug must not stop every room's broadcasts
                log.exception("writing room %s failed", room.id)
                backlog.clear()
            busy = busy or backlog.pending
            if time.perf_counter() >= deadline:
                return True
        return busy

    def _write(self, room: LocalRoom, deadline: float | None) -> None:
        backlog = room.backlog
        written, slow = backlog.write(self.settings.ws_send_buffer, deadline)
        for conn in slow:
            self.metrics.ws_slow_consumers.inc()
            conn.close(wire.CloseCode.SLOW_CONSUMER, "send buffer full; reconnect and recover")
        self.metrics.ws_frames_out.inc(written)
        if not backlog.in_pass:
            self.metrics.flush_seconds.observe(time.perf_counter() - backlog.pass_started)
