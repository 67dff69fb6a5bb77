"""Finished media in S3-compatible object storage: the client, and the uploader.

When ``--s3-endpoint`` is set, the local media directory is a staging area
for finished media: a clip (and its thumbnail) or a replay is written to disk
as before, then ``Uploader`` puts it in the bucket under
``<prefix><path under the media root>`` (``clips/<room>/<clip>.mp4``,
``replay/<room>.mp4``) and only then deletes the local file. A file that could
not be uploaded stays on disk (the disk budget never deletes one: see
``media.mediadir.prune``) and is tried again by the next sweep, so a finished
clip is never lost to a store that is down for a while.

The client is MinIO's (sync, urllib3): every call here blocks, so it runs on
the uploader's own thread, the media worker or Starlette's thread pool, never
on the event loop. Transient failures (connection refused or reset, 5xx) are
retried with exponential backoff by urllib3's ``Retry`` in the client's pool;
what still fails waits for the next sweep (every ``retry_s``), which re-scans
the staging directories (a node restarted with files left to upload finds
them the same way); the files waiting behind a failure are left to that
sweep too, so an outage costs the client's retries once per sweep, not once
per file.

The node needs only ``s3:PutObject``, ``s3:GetObject``, ``s3:DeleteObject``
and ``s3:AbortMultipartUpload`` on ``<bucket>/<prefix>*`` (docs/operations.md):
it never lists, creates or configures the bucket.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError
from urllib3.util import Retry, Timeout

from livecore.config import ObjectStoreSettings

log = logging.getLogger("livecore.objectstore")

TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".m4s": "video/iso.segment",
         ".m3u8": "application/vnd.apple.mpegurl"}  # fmt: skip
#: Local files a sweep uploads, relative to the media root.
STAGED = ("clips/*/*.mp4", "clips/*/*.jpg", "replay/*.mp4")
#: A file a sweep finds is left alone until it is this old (seconds): the
#: plane submits what it just wrote itself, once it is complete (a clip with
#: its thumbnail, a replay once remuxed).
SETTLE_S = 10.0
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})
#: What a failing store raises through the client (its own errors and urllib3's).
StoreError = (MinioException, urllib3.exceptions.HTTPError, OSError)


class Unsatisfiable(ValueError):
    """The range asked starts past the object's end (HTTP 416)."""


class NotModified(ValueError):
    """The object still has the ETag the client holds (HTTP 304)."""


class ObjectStore:
    """One bucket and prefix, through a MinIO client (every method blocks)."""

    def __init__(self, settings: ObjectStoreSettings, root: Path) -> None:
        self.settings = settings
        self.root = root.resolve()
        pool = urllib3.PoolManager(
            timeout=Timeout(connect=3.0, read=30.0),
            maxsize=8,
            retries=Retry(
                total=3,
                backoff_factor=0.5,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,  # PUT too: an object put is idempotent
                raise_on_status=False,
            ),
        )
        self.client = Minio(
            settings.host,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,  # given: the client never asks the bucket's location
            http_client=pool,
        )

    def key(self, path: Path) -> str:
        """The object key of a file under the media root (ValueError outside it)."""
        relative = path.resolve().relative_to(self.root)
        return self.settings.prefix + relative.as_posix()

    def put(self, path: Path) -> None:
        self.client.fput_object(
            self.settings.bucket, self.key(path), str(path),
            content_type=TYPES.get(path.suffix, "application/octet-stream"),
        )  # fmt: skip

    def open(self, path: Path, headers: dict[str, str] | None = None) -> Any | None:
        """A streaming response of the object of ``path`` (None: the bucket has none).

        ``headers`` (``Range``, ``If-None-Match``) go to the bucket as they are: it
        answers ranges (206) as S3 does. Raises ``Unsatisfiable`` (416) and
        ``NotModified`` (304). The caller closes the response (``chunks`` does)."""
        asked: dict[str, str | list[str] | tuple[str]] = dict(headers or {})
        try:
            return self.client.get_object(self.settings.bucket, self.key(path),
                                          request_headers=asked or None)  # fmt: skip
        except S3Error as exc:
            if exc.code in MISSING_CODES:
                return None
            if exc.code == "InvalidRange":
                raise Unsatisfiable(str(path.name)) from None
            raise
        except ServerError as exc:
            if exc.status_code == 304:
                raise NotModified(str(path.name)) from None
            raise

    def fetch(self, path: Path) -> bool:
        """Download the object of ``path`` to ``path``; False when the bucket has none.
        (One GET: no HEAD first, so ``s3:GetObject`` is all it needs.)"""
        body = self.open(path)
        if body is None:
            return False
        tmp = path.with_name(path.name + ".get")
        with tmp.open("wb") as out:
            for chunk in chunks(body):
                out.write(chunk)
        os.replace(tmp, path)
        return True

    def delete(self, path: Path) -> None:
        self.client.remove_object(self.settings.bucket, self.key(path))


def chunks(response: Any, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body of an ``ObjectStore.open`` response, then the connection back to the pool."""
    try:
        yield from response.stream(size)
    finally:
        response.close()
        response.release_conn()


def discard(response: Any) -> None:
    """Close an ``ObjectStore.open`` response unread (a HEAD request's)."""
    response.close()
    response.release_conn()


@dataclass(slots=True)
class UploadStats:
    uploaded: int = 0
    failed: int = 0
    refused: int = 0
    """Submissions refused because the line was full (a later sweep finds them)."""


_STOP = Path("/")


class Uploader:
    """One thread putting staged files in the bucket (see the module doc).

    ``submit`` is safe from any thread and never blocks: at most ``max_pending``
    files wait; one more is refused (it stays on disk for the next sweep).
    ``on_result(result)`` (``uploaded`` or ``failed``) is called on the uploader's
    thread after each try.
    """

    def __init__(
        self,
        store: ObjectStore,
        *,
        max_pending: int = 256,
        on_result: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.stats = UploadStats()
        self._queue: queue.Queue[Path] = queue.Queue(max_pending)
        self._queued: set[Path] = set()
        """Waiting files (one taken off the line leaves it: submitted again while it is
        being uploaded, as a replay extended meanwhile is, it goes up once more)."""
        self._busy = False
        self._lock = threading.Lock()
        self._on_result = on_result
        self._clock = clock
        self._thread = threading.Thread(target=self._run, name="media-upload", daemon=True)
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
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def submit(self, path: Path) -> bool:
        """Queue ``path`` for upload; False when it is already queued or the line is full."""
        path = path.resolve()
        with self._lock:
            if path in self._queued:
                return False
            try:
                self._queue.put_nowait(path)
            except queue.Full:
                self.stats.refused += 1
                return False
            self._queued.add(path)
            self._idle.clear()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being uploaded (tests, shutdown)."""
        return self._idle.wait(timeout)

    def sweep(self) -> int:
        """Queue every staged file older than ``SETTLE_S``; how many were queued."""
        settled = self._clock() - SETTLE_S
        count = 0
        for pattern in STAGED:
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
                path = self._queue.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                path = None
            if path == _STOP:
                return
            if path is not None:
                with self._lock:
                    self._queued.discard(path)
                    self._busy = True
                try:
                    if not self._upload(path):
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
                path = self._queue.get_nowait()
            except queue.Empty:
                return
            if path == _STOP:
                self._queue.put(_STOP)
                return
            with self._lock:
                self._queued.discard(path)

    def _upload(self, path: Path) -> bool:
        """Put one file; False when the store failed (the file stays)."""
        try:
            before = path.stat()
        except FileNotFoundError:
            return True  # deleted meanwhile (a clip the host removed)
        try:
            self.store.put(path)
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
