"""The cyclic garbage collector's pauses, on ``/metrics`` and in the log.

A collection stops the event loop for as long as it walks its generations:
in a burst (a flash sale's opening second) one that falls due costs every
message queued behind it. :class:`GcWatch` times each collection
(``gc.callbacks``) into ``livecore_gc_pause_seconds{generation}`` and logs one
that took ``log_ms`` or more at WARNING, so a slow second can be matched to it.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger("livecore.gc")

#: A pause this long or longer is logged (a tick of the broadcast is 100 ms).
LOG_MS = 20.0


class GcWatch:
    """A ``gc.callbacks`` entry: install with :meth:`start`, remove with :meth:`stop`."""

    def __init__(self, pauses: Histogram, log_ms: float = LOG_MS) -> None:
        self._pauses = pauses
        self._children = [pauses.labels(str(g)) for g in range(3)]
        self._log_ms = log_ms
        self._started = 0.0

    def start(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def stop(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        elapsed = time.perf_counter() - self._started
        generation = int(info.get("generation", 2))
        self._children[min(max(generation, 0), 2)].observe(elapsed)
        if elapsed * 1000 >= self._log_ms:
            log.warning(
                "gc: generation %d paused the loop %.1f ms (%d collected, %d uncollectable)",
                generation, elapsed * 1000, info.get("collected", 0),
                info.get("uncollectable", 0),
            )  # fmt: skip


class IdleCollector:
    """Runs the young collection that is half due while the loop is idle.

    The nodes collect the young generation every 50,000 net allocations
    (``signalling.server``): where that count stands when a burst begins
    depends on what came before (a flash sale's 5,000 buyers connecting leave
    tens of thousands of objects), and a collection falling due inside the
    burst pauses every message queued behind it. Told each broadcast tick how
    late the loop woke it, this collects while the loop is on time and the
    young count has passed half its threshold (the middle generation too when
    that collection would bring it due; the oldest is left to CPython's own
    rule), so a burst starts with a young generation that has room for it.
    """

    #: The loop counts as idle when the tick came this close to its time (seconds).
    IDLE_LATE_S = 0.002

    def __init__(self, fraction: float = 0.5) -> None:
        self._fraction = fraction
        self.collections = 0

    def tick(self, late_s: float) -> None:
        if late_s > self.IDLE_LATE_S:
            return
        (count0, count1, _), (threshold0, threshold1, _) = (
            gc.get_count(),
            gc.get_threshold(),
        )
        if threshold0 <= 0 or count0 < threshold0 * self._fraction:
            return
        # The middle generation too when this collection brings it due; never the whole
        # heap: CPython holds a full collection back until a quarter of the long-lived
        # objects are new, and one at 19,500 viewers would be a pause of its own.
        generation = 1 if count1 + 1 >= threshold1 else 0
        gc.collect(generation)
        self.collections += 1
