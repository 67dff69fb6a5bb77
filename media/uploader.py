"""Putting media files in object storage: one thread, a bounded line, sweeps.

``Uploader.submit(path)`` queues a file (from any thread, never blocking);
the uploader's thread puts it in the bucket (``media.objectstore``) and then,
unless asked to keep it, deletes the local copy, only if it did not change
meanwhile (a replay extended while it went up is submitted again by its
writer). A file that could not be put stays on disk: every ``retry_s`` (and
at start, which also finds what a stopped node left) a sweep queues again
the staged files (``STAGED``: clips, thumbnails, replays) older than
``SETTLE_S``; the files waiting behind a failure are left to that sweep, so
an outage costs the client's retries once per sweep, not once per file.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from media.hlsmaster import MASTER_NAME, LayerNames
from media.objectstore import ObjectStore, StoreError
from media.segments import Segment

log = logging.getLogger("livecore.objectstore")

#: Local files a sweep uploads, relative to the media root.
STAGED = ("clips/*/*.mp4", "clips/*/*.jpg", "replay/*.mp4")
#: A file a sweep finds is left alone until it is this old (seconds): the
#: plane submits what it just wrote itself, once it is complete (a clip with
#: its thumbnail, a replay once remuxed).
SETTLE_S = 10.0


@dataclass(slots=True)
class UploadStats:
    uploaded: int = 0
    failed: int = 0
    refused: int = 0
    """Submissions refused because the line was full (a later sweep finds them)."""


@dataclass(frozen=True, slots=True)
class _Item:
    path: Path
    key: str
    keep: bool


_IDLE = _Item(Path("/"), "", True)
"""What the loop sees when the line stayed empty until the next sweep."""


class Uploader:
    """One thread putting files in the bucket (see the module doc).

    ``submit`` is safe from any thread and never blocks: at most ``max_pending``
    files wait; one more is refused (a staged one stays on disk for the next
    sweep). ``on_result(result)`` (``uploaded`` or ``failed``) is called on the
    uploader's thread after each try. ``staged``: the glob patterns (under the
    media root) a sweep uploads; empty, no sweep.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        max_pending: int = 256,
        on_result: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
        staged: tuple[str, ...] = STAGED,
        name: str = "media-upload",
    ) -> None:
        self.store = store
        self.stats = UploadStats()
        self._staged = staged
        self._queue: queue.Queue[_Item | None] = queue.Queue(max_pending)
        self._queued: set[str] = set()
        """Waiting files (one taken off the line leaves it: submitted again while it is
        being uploaded, as a replay extended meanwhile is, it goes up once more)."""
        self._busy = False
        self._lock = threading.Lock()
        self._on_result = on_result
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._idle = threading.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Files waiting or being uploaded."""
        with self._lock:
            return len(self._queued) + self._busy

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish the upload under way; what waits stays on disk for the next start."""
        with self._lock:
            self._queued.clear()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join(timeout)

    def submit(self, path: Path, *, key: str | None = None, keep: bool = False) -> bool:
        """Queue ``path`` for upload under its own key (or ``key``); with ``keep`` the
        local file stays (a live segment: clips and the replay still read it). False
        when that key already waits or the line is full."""
        item = _Item(path.resolve(), key or self.store.key(path), keep)
        with self._lock:
            if item.key in self._queued:
                return False
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.stats.refused += 1
                return False
            self._queued.add(item.key)
            self._idle.clear()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being uploaded (tests, shutdown)."""
        return self._idle.wait(timeout)

    def sweep(self) -> int:
        """Queue every staged file older than ``SETTLE_S``; how many were queued."""
        settled = self._clock() - SETTLE_S
        count = 0
        for pattern in self._staged:
            for path in sorted(self.store.root.glob(pattern)):
                try:
                    if path.stat().st_mtime <= settled and self.submit(path):
                        count += 1
                except FileNotFoundError:
                    continue
        return count

    def _run(self) -> None:
        retry_s = self.store.settings.retry_s
        self.sweep()
        next_sweep = time.monotonic() + retry_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                item = _IDLE
            if item is None:
                return
            if item is not _IDLE:
                with self._lock:
                    self._queued.discard(item.key)
                    self._busy = True
                try:
                    if not self._upload(item):
                        self._drop_waiting()  # the store is failing: the next sweep retries
                finally:
                    with self._lock:
                        self._busy = False
                        if not self._queued:
                            self._idle.set()
            if time.monotonic() >= next_sweep:  # also when busy: failures are retried
                self.sweep()
                next_sweep = time.monotonic() + retry_s

    def _drop_waiting(self) -> None:
        """Forget the waiting files (they stay on disk): one failure costs the client's
        retries once, not once per waiting file."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self._queue.put(None)
                return
            with self._lock:
                self._queued.discard(item.key)

    def _upload(self, item: _Item) -> bool:
        """Put one file; False when the store failed (the file stays)."""
        path = item.path
        try:
            before = path.stat()
        except FileNotFoundError:
            return True  # deleted meanwhile (a clip the host removed)
        try:
            self.store.put(path, item.key)
        except StoreError as exc:
            self.stats.failed += 1
            self._result("failed")
            log.warning("upload of %s failed, kept on disk for a later try: %s", path.name, exc)
            return False
        except ValueError:
            log.error("not under the media root, not uploaded: %s", path)
            return True
        self.stats.uploaded += 1
        self._result("uploaded")
        if item.keep:
            return True
        try:
            after = path.stat()
            if (after.st_ino, after.st_mtime_ns, after.st_size) == (
                before.st_ino, before.st_mtime_ns, before.st_size,
            ):  # fmt: skip
                path.unlink()  # the bucket holds it now
        except FileNotFoundError:
            pass
        return True

    def _result(self, result: str) -> None:
        if self._on_result is not None:
            self._on_result(result)


class HlsFeed:
    """A recording's ``on_segment``: its live HLS to the bucket as it is written.

    Each finished segment is submitted (kept on disk: clips and the replay read
    it), then the stream's playlist under the room's key (``room_playlist``),
    in that order on one uploader thread, so the bucket's playlist never names a
    segment the bucket has not got yet (unless that segment failed: HLS upload
    is best effort and not swept; the recording node still serves it). The
    bucket gets the playlist without low-latency parts (``plain.m3u8``): parts
    live a few seconds, too short for an upload; then, for the top layer, the
    multivariant playlist under the room's ``master.m3u8`` key. Each lower layer
    (``layer``) has its own feed: its files, its playlist under the room's
    ``<layer>_index.m3u8`` key.
    """

    def __init__(
        self, uploader: Uploader, directory: Path, room_playlist: Path, layer: str = ""
    ) -> None:
        self.uploader = uploader
        self.dir = directory
        self.names = LayerNames(layer)
        self.playlist_key = uploader.store.key(room_playlist)
        self.master_key = (
            None if layer else uploader.store.key(room_playlist.with_name(MASTER_NAME))
        )
        self._inits_sent: set[str] = set()

    def __call__(self, segment: Segment) -> None:
        if segment.init not in self._inits_sent:
            if self.uploader.submit(self.dir / segment.init, keep=True):
                self._inits_sent.add(segment.init)
        self.uploader.submit(self.dir / segment.name, keep=True)
        plain = self.dir / self.names.plain_playlist
        self.uploader.submit(plain, key=self.playlist_key, keep=True)
        if self.master_key is not None:
            self.uploader.submit(self.dir / MASTER_NAME, key=self.master_key, keep=True)
