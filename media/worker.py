"""One lane of the media plane's blocking jobs: a thread and a bounded line of jobs.

``MediaWorker.run(fn, *args)`` runs ``fn`` on the lane's thread and awaits its
result without blocking the event loop. At most ``max_pending`` jobs wait or
run at once; one more is refused with ``WorkerBusy`` (the caller counts it),
so a burst of highlights cannot pile up work without bound.

The recording plane keeps two lanes, so that short jobs never queue behind
long ones: clips (cuts and thumbnails: a second or less each) and remuxes
(replays of whole streams, disk pruning, fetches from object storage: up to
minutes). Uploads have their own thread (``media.objectstore.Uploader``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerBusy(RuntimeError):
    """The worker already has ``max_pending`` jobs."""


class MediaWorker:
    def __init__(self, max_pending: int = 16, name: str = "media-worker") -> None:
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending = 0
        self.refused = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pending >= self.max_pending:
            self.refused += 1
            raise WorkerBusy(f"{self._pending} media jobs already pending")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._pending -= 1

    def close(self) -> None:
        """Finish the running job, drop the waiting ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)
