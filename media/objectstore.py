"""Finished media in S3-compatible object storage: the client (``media.uploader`` puts).

When ``--s3-endpoint`` is set, the local media directory is a staging area
for finished media: a clip (and its thumbnail) or a replay is written to disk
as before, then ``media.uploader.Uploader`` puts it in the bucket under
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
from collections.abc import Iterator
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

    def put(self, path: Path, key: str | None = None) -> None:
        """Put the file ``path`` under its own key (or ``key``, one of this prefix's)."""
        self.client.fput_object(
            self.settings.bucket, key or self.key(path), str(path),
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
