"""A room streaming comments to watching viewers, their latency kept per phase.

The host comments at a steady rate; each comment's text carries its number
and the phase it was sent in ("quiet", then the fault's), so every viewer's
latency (send → its own receipt, one process, one clock) is attributed to the
phase it was sent in and the phases compare side by side in one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from clients.python.room import RoomClient
from loadtests.faults.cluster import NodeProc, mint


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class Audience:
    """A host streaming comments (``size`` characters and a tag) at ``rate``/s to
    ``viewers`` watchers of room r1."""

    def __init__(self, node: NodeProc, viewers: int, rate: float = 40.0, size: int = 60) -> None:
        self.host = RoomClient(node.url, "r1", mint("host", "host1"), max_pending=100_000)
        self.watchers = [
            RoomClient(node.url, "r1", mint("viewer", f"watcher{i}"), max_pending=100_000)
            for i in range(viewers)
        ]
        self.rate = rate
        self.pad = "x" * size
        #: Set by the scenario: "warmup" until it says "quiet", then the fault's name.
        self.phase = "warmup"
        self.sent: dict[int, float] = {}
        self.acked = 0
        self.latency: dict[str, list[float]] = {}
        self.received = [0] * viewers
        self.gaps = 0
        self._stop = asyncio.Event()
        #: Set whenever a watcher received something (or stopped).
        self._progress = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.host.connect()
        for watcher in self.watchers:
            await watcher.connect()
        self._tasks = [asyncio.create_task(self._watch(i)) for i in range(len(self.watchers))]
        self._tasks.append(asyncio.create_task(self._stream()))

    async def _stream(self) -> None:
        n = 0
        period = 1 / self.rate
        next_at = time.perf_counter()
        while not self._stop.is_set():
            self.sent[n] = time.perf_counter()
            await self.host.request("comment", text=f"{n}|{self.phase}|{self.pad}")
            self.acked += 1
            n += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def _watch(self, i: int) -> None:
        watcher = self.watchers[i]
        while True:
            try:
                event = await watcher.next_event(wait=3600)
            except asyncio.CancelledError:
                raise
            except Exception:  # a gap (GapError) or the socket closed
                self.gaps += 1
                self._progress.set()
                return
            if event.get("t") != "comment":
                continue
            number, phase, _ = str(event["text"]).split("|", 2)
            sent = self.sent.get(int(number))
            if sent is not None:
                self.latency.setdefault(phase, []).append(time.perf_counter() - sent)
                self.received[i] += 1
                self._progress.set()

    async def stop(self, wait: float = 20.0) -> dict[str, Any]:
        """Stop streaming; wait until every watcher has every acknowledged comment."""
        self._stop.set()
        await self._tasks[-1]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while min(self.received) < self.acked and not self.gaps:
                    self._progress.clear()
                    await self._progress.wait()
        for task in self._tasks[:-1]:
            task.cancel()
        await asyncio.gather(*self._tasks[:-1], return_exceptions=True)
        for client in (self.host, *self.watchers):
            await client.close()
        missing = sum(self.acked - got for got in self.received)
        p99_ms = {phase: round(p99(v) * 1000, 1) for phase, v in self.latency.items()}
        return {"acked": self.acked, "lost": missing, "gaps": self.gaps, "p99_ms": p99_ms}

    def ratio(self, phase: str) -> float:
        """``phase``'s p99 over the quiet phase's (same viewers, same run)."""
        quiet = p99(self.latency.get("quiet", []))
        return round(p99(self.latency.get(phase, [])) / quiet, 2) if quiet else 0.0
