"""The broadcast tick: every room's batch encoded once, the same bytes to every socket."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from livecore import wire
from livecore.config import Settings
from signalling.hub.room import LocalRoom, Member
from signalling.node.metrics import Metrics

log = logging.getLogger("livecore.hub")


class Ticker:
    """Flushes the hub's rooms (``rooms`` is the hub's map, shared)."""

    def __init__(self, rooms: dict[str, LocalRoom], settings: Settings, metrics: Metrics) -> None:
        self.rooms = rooms
        self.settings = settings
        self.metrics = metrics
        self.running = False
        #: Monotonic time of the broadcast loop's last turn (readiness).
        self.last_beat = time.monotonic()
        #: Told each tick how late (seconds) the loop woke it (admission of hellos).
        self.on_late: Callable[[float], None] = lambda late_s: None

    async def run(self) -> None:
        """Flush every room once per tick.

        A flush that takes longer than the tick (tens of thousands of viewers)
        is followed at once by the next, after a pause of a quarter of its
        length that leaves the loop time for reads, the bus and housekeeping:
        each viewer is then written every ~1.25 flushes and the core stays
        under ~80% busy with writes.
        """
        tick = self.settings.tick_ms / 1000
        pause = tick
        while self.running:
            asked = time.monotonic()
            await asyncio.sleep(pause)
            self.last_beat = time.monotonic()
            self.on_late(self.last_beat - asked - pause)
            started = time.perf_counter()
            for room in list(self.rooms.values()):
                try:
                    self.flush(room)
                except Exception:  # a bug must not stop every room's broadcasts
                    log.exception("flushing room %s failed", room.id)
            spent = time.perf_counter() - started
            self.metrics.flush_seconds.observe(spent)
            pause = max(tick - spent, spent / 4)

    def flush(self, room: LocalRoom) -> None:
        """Write the room's batch to every connection (one frame, the same bytes),
        then each changed group's frame to its community and the hosts.

        This is the hot loop of the node (one iteration per viewer per tick),
        so it talks to the transports directly instead of through
        ``HubConnection.write``; the checks are the same.
        """
        frame = room.take_batch()
        sends = room.group_frames(time.monotonic()) if room.dirty_groups else []
        if frame is not None:
            sends.insert(0, (frame, room.conns))
        limit = self.settings.ws_send_buffer
        slow: set[Member] = set()
        written = 0
        for data, targets in sends:
            for conn in targets:
                transport = conn.transport
                if transport is None or conn.closing:
                    continue
                if transport.get_write_buffer_size() > limit:
                    slow.add(conn)
                    continue
                transport.write(data)
                written += 1
        for conn in slow:
            self.metrics.ws_slow_consumers.inc()
            conn.close(wire.CloseCode.SLOW_CONSUMER, "send buffer full; reconnect and recover")
        self.metrics.ws_frames_out.inc(written)
