"""Recorded media that left this node's disk for object storage, streamed through the node.

One seam, ``from_object_store``: the media routes (``signalling.routes.mediafiles``)
look a file up on the local disk first, then here, then (for what another
node holds) at that node. With ``--s3-endpoint`` off it answers None at once.

Why through the node rather than a presigned redirect: the URL a shopper, a
CDN or hls.js holds stays the node's own (``/media/clips/...``,
``/replay/...``), with the node's ``Cache-Control`` (clips immutable, the
replay a minute), so a CDN in front caches the bytes once and the bucket
stays private, needs no CORS and no public address; a redirect would hand
out a URL that expires, that a CDN would cache with its signature, and that
moves a player to another origin. ``Range`` and ``If-None-Match`` go to the
bucket as they came (one GET: it answers 206, 304 and 416 as S3 does; a
phone's ``<video>`` seeks by ranges, a CDN revalidates the replay by ETag).
"""

from __future__ import annotations

from pathlib import Path

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from livecore.errors import ErrorCode, LivecoreError
from media.objectstore import (
    NotModified,
    ObjectStore,
    StoreError,
    Unsatisfiable,
    chunks,
    discard,
)

CORS = {"Access-Control-Allow-Origin": "*"}
#: Request headers passed on to the bucket (longer values are dropped: no range
#: header a player sends is this long).
PASSED = ("range", "if-none-match")
MAX_PASSED = 200
#: Response headers passed back from the bucket.
ANSWERED = ("content-length", "content-range", "etag", "last-modified")


def _store(request: Request) -> ObjectStore | None:
    recording = getattr(request.app.state, "recording", None)
    store: ObjectStore | None = getattr(recording, "store", None)
    return store


def _unavailable() -> LivecoreError:
    return LivecoreError(ErrorCode.MEDIA_UNAVAILABLE,
                         "the object storage holding this file did not answer; retry")  # fmt: skip


async def from_object_store(
    request: Request, path: Path, *, media_type: str, cache: str
) -> Response | None:
    """The object of the media file ``path`` streamed from the bucket; None when object
    storage is off or the bucket has no such object. A store that does not answer is
    ``media_unavailable`` (503): the file may well be there."""
    store = _store(request)
    if store is None:
        return None
    asked = {name: value for name in PASSED
             if (value := request.headers.get(name)) and len(value) <= MAX_PASSED}  # fmt: skip
    headers = {"Cache-Control": cache, "Accept-Ranges": "bytes", **CORS}
    try:
        body = await run_in_threadpool(store.open, path, asked)
    except NotModified:
        return Response(status_code=304, headers=headers)
    except Unsatisfiable:
        return Response(status_code=416, headers=CORS)
    except StoreError:
        raise _unavailable() from None
    if body is None:
        return None
    headers.update({k: v for k in ANSWERED if (v := body.headers.get(k))})
    if request.method == "HEAD":
        await run_in_threadpool(discard, body)
        return Response(status_code=body.status, headers=headers, media_type=media_type)
    return StreamingResponse(iterate_in_threadpool(chunks(body)), status_code=body.status,
                             headers=headers, media_type=media_type)  # fmt: skip
