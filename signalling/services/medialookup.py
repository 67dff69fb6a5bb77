"""Where a media URL's file is: this node's disk, else the node that has it.

Every node hands out the same media URLs (HLS, segments, the replay, clip
files), so a request may land on any node. :meth:`MediaLookup.respond` asks
its sources in order and the first that has the file answers:

1. :class:`LocalDisk` — this node's media directory;
2. :class:`ObjectStorage` — the bucket, when configured (``--s3-endpoint``;
   live HLS only with ``--s3-hls``), through ``signalling.routes.objectmedia``;
   for a playlist it comes last: the recording node's has the LL-HLS parts
   and answers blocking reloads, the bucket's is the fallback when that node
   is gone;
3. :class:`PeerNode` — the node that wrote it, found in Valkey
   (:mod:`livecore.store.nodes`), reached at its node-to-node URL
   (``--node-url``) and **streamed through** with a bounded buffer (one
   ``CHUNK`` in flight; the client's pace throttles the read).

Streamed through, not redirected: a redirect would hand the node-to-node
address (a private one) to shoppers and to the CDN, and each node's files
would sit in the CDN's cache under another name; streamed, a CDN or nginx in
front sees one URL per file and fetches it once.

A node-to-node request (a hop, :mod:`signalling.services.peerhop`) carries
``X-Livecore-Node-Token``: a node token for the room. It is answered from
the local sources only, never forwarded again (no loops); a wrong token is
refused with its ``token_*`` code.

Cache headers a CDN honours: segments, parts, clip files and a versioned
replay (``?v=`` of the current one) ``immutable``; a live playlist
``max-age`` of half a segment (at least 1 s), an ended one 60 s; a blocking
reload's answer (``_HLS_msn``: its URL names what it waited for) six target
durations. LL-HLS directives (``signalling.services.hlswait``) are answered
by the node whose disk has the playlist: a hop passes the query on, so
another node holds the request exactly as the recording node does.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import httpx
from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from livecore.errors import ErrorCode, LivecoreError
from livecore.store.clips import ClipStore
from livecore.store.nodes import Held
from media.hlsmaster import MASTER_NAME, PART_RE, PLAYLIST_RE
from media.hlsplaylist import target_duration
from signalling.node.context import NodeContext
from signalling.services import peerhop
from signalling.services.hlswait import (
    Directives,
    answer_playlist,
    wait_for_file,
    with_rendition_reports,
)
from signalling.services.peerhop import Hops
from signalling.services.recording import RecordingPlane

log = logging.getLogger("livecore.media.lookup")
Kind = Literal["playlist", "segment", "replay", "clip"]
IMMUTABLE = "public, max-age=31536000, immutable"
CORS = {"Access-Control-Allow-Origin": "*"}
#: Bytes read from a peer node per step (the whole buffer of one streamed response).
CHUNK = 64 * 1024
TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mp4": "video/mp4",
    ".m4s": "video/iso.segment",
    ".jpg": "image/jpeg",
}
#: Headers of a peer node's answer that are passed on unchanged.
PASSED = ("content-type", "content-length", "content-range", "accept-ranges", "cache-control",
          "etag", "last-modified", "access-control-allow-origin")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Wanted:
    """A media file a URL names (its names already checked against the media rules)."""

    kind: Kind
    room: str
    #: A segment's stream and file name (``init.mp4``, ``segNNNNNN.m4s``).
    stream: str = ""
    name: str = ""
    #: A clip's 12 hex digits and extension (``mp4``, ``jpg``).
    clip: str = ""
    ext: str = ""
    #: The replay's version asked for (``?v=``), "" without.
    version: str = ""
    #: A playlist's LL-HLS delivery directives (``_HLS_msn``, ``_HLS_part``, ``_HLS_skip``).
    directives: Directives = field(default_factory=Directives)


#: Reads a media file's object from the bucket (``signalling.routes.objectmedia.
#: from_object_store``, handed in by the app: services import no routes).
ObjectFetch = Callable[..., Awaitable[Response | None]]


class Source(Protocol):
    """One place files may be; ``answer`` returns None when it does not have it."""

    #: Whether another node's request (a hop) may be answered from it: this node's own
    #: disk (and object storage) yes, another node no (no loops).
    local: bool

    async def answer(self, request: Request, wanted: Wanted) -> Response | None: ...


class LookupMetrics:
    def __init__(self, ctx: NodeContext) -> None:
        r = ctx.metrics.registry
        self.reads = Counter(
            "livecore_media_reads_total",
            "Media files this node served from its own disk, by kind and by who asked "
            "(client: a browser or a CDN; node: another node streaming it through)",
            ["kind", "by"], registry=r,
        )  # fmt: skip
        self.forwards = Counter(
            "livecore_media_forwards_total",
            "Media requests this node streamed through from the node holding the file, "
            "by kind and result (ok, missing, unreachable)",
            ["kind", "result"], registry=r,
        )  # fmt: skip


def playlist_max_age(segment_s: float) -> int:
    """Seconds a live playlist may be cached: half a segment, at least one."""
    return max(1, int(segment_s // 2))


class LocalDisk:
    """This node's media directory. For the "newest" files (playlist, replay) a newer
    one on another node (Valkey says so) wins over an older local one."""

    local = True

    def __init__(self, lookup: MediaLookup) -> None:
        self.lookup = lookup

    async def answer(self, request: Request, wanted: Wanted) -> Response | None:
        media, hop = self.lookup.media, self.lookup.is_hop(request)
        path: Path | None
        if wanted.kind == "playlist":
            directory = media.latest_stream(wanted.room)
            if directory is None:
                return None
            latest = None if hop else await self.lookup.held(wanted)
            if (
                latest is not None
                and latest.node != self.lookup.me
                and latest.tag != directory.name
            ):
                return None  # a newer recording of the room is on another node
            return await self._playlist(directory / (wanted.name or "index.m3u8"), wanted, hop)
        if wanted.kind == "segment":
            path = media.segment_file(wanted.room, wanted.stream, wanted.name)
            if path is None and PART_RE.match(wanted.name):
                path = await self._hinted_part(wanted)
            cache = IMMUTABLE
        elif wanted.kind == "clip":
            path = media.clip_path(wanted.room, wanted.clip, wanted.ext)
            cache = IMMUTABLE
        else:
            path = media.replay_path(wanted.room)
            holder = await self.lookup.held(wanted)
            if holder is not None and holder.node != self.lookup.me and not hop:
                return None  # the room's replay was rebuilt on another node
            cache = await self.lookup.replay_cache(wanted)
        if path is None or not path.is_file():
            return None
        self.lookup.count_read(wanted, hop)
        return FileResponse(
            path, media_type=TYPES.get(path.suffix, "application/octet-stream"),
            headers={"Cache-Control": cache, **CORS},
        )  # fmt: skip

    async def _playlist(self, path: Path, wanted: Wanted, hop: bool) -> Response | None:
        lookup = self.lookup
        text = await answer_playlist(path, wanted.directives, lookup.waits, wanted.room)
        if text is None:
            return None
        live = "#EXT-X-ENDLIST" not in text
        if live:
            text = with_rendition_reports(path, text)
        max_age = playlist_max_age(lookup.ctx.settings.record_segment_s) if live else 60
        if live and wanted.directives.blocking:
            max_age = 6 * lookup.target
        lookup.count_read(wanted, hop)
        cache = {"Cache-Control": f"public, max-age={max_age}", **CORS}
        return Response(text, media_type=TYPES[".m3u8"], headers=cache)

    async def _hinted_part(self, wanted: Wanted) -> Path | None:
        """A part the playlist's ``EXT-X-PRELOAD-HINT`` names, held until it is written
        (bounded) when this node writes the room's live recording."""
        lookup = self.lookup
        path = lookup.media.segment_path(wanted.room, wanted.stream, wanted.name)
        if path is None or wanted.room not in lookup.waits.local or not path.parent.is_dir():
            return None
        found = await wait_for_file(path, lookup.waits, wanted.room, 3 * lookup.target)
        return path if found else None


class ObjectStorage:
    """What left the disks for the bucket (``signalling.routes.objectmedia``): finished
    clips, thumbnails and replays, and with ``--s3-hls`` the live HLS (the room's newest
    playlist under one key). Off: answers None at once."""

    local = True

    def __init__(self, lookup: MediaLookup, plane: RecordingPlane, fetch: ObjectFetch) -> None:
        self.lookup = lookup
        self.plane = plane
        self.fetch = fetch

    async def answer(self, request: Request, wanted: Wanted) -> Response | None:
        media, plane = self.lookup.media, self.plane
        if plane.store is None:
            return None
        path: Path | None
        if wanted.kind == "playlist":  # each layer's (without parts) and the master
            name = wanted.name or "index.m3u8"
            if not plane.hls_in_store or not (name == MASTER_NAME or PLAYLIST_RE.match(name)):
                return None
            age = playlist_max_age(self.lookup.ctx.settings.record_segment_s)
            path, cache = media.room_playlist(wanted.room, name), f"public, max-age={age}"
        elif wanted.kind == "segment":
            if not plane.hls_in_store:
                return None
            path = media.segment_path(wanted.room, wanted.stream, wanted.name)
            cache = IMMUTABLE
        elif wanted.kind == "clip":
            path, cache = media.clip_path(wanted.room, wanted.clip, wanted.ext), IMMUTABLE
        else:
            path = media.replay_path(wanted.room)
            cache = await self.lookup.replay_cache(wanted)
        if path is None:
            return None
        media_type = TYPES.get(path.suffix, "application/octet-stream")
        return await self.fetch(request, path, media_type=media_type, cache=cache)


class PeerNode:
    """The node that wrote the file, streamed through (see the module doc)."""

    local = False

    def __init__(self, lookup: MediaLookup, hops: Hops) -> None:
        self.lookup = lookup
        self.hops = hops

    async def answer(self, request: Request, wanted: Wanted) -> Response | None:
        lookup = self.lookup
        holder = await lookup.held(wanted)
        if holder is None or holder.node == lookup.me:
            return None
        url = await lookup.ctx.stores.nodes.url(holder.node)
        if url is None:  # that node is gone, and with it what only its disk held
            lookup.metrics.forwards.labels(wanted.kind, "missing").inc()
            return None
        headers = {peerhop.HEADER: peerhop.token(lookup.ctx, wanted.room)}
        if "range" in request.headers:
            headers["Range"] = request.headers["range"]
        target = f"{url}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
        client = self.hops.client()
        try:
            upstream = await client.send(
                client.build_request(request.method, target, headers=headers), stream=True
            )
        except httpx.HTTPError as exc:
            lookup.metrics.forwards.labels(wanted.kind, "unreachable").inc()
            log.warning("media %s of room %s: node %s unreachable (%r)", wanted.kind,
                        wanted.room, holder.node, exc)  # fmt: skip
            raise LivecoreError(ErrorCode.MEDIA_UNAVAILABLE,
                                "the node holding this file did not answer") from None  # fmt: skip
        if wanted.kind == "playlist" and upstream.status_code in (400, 503):
            # The holder judged an LL-HLS directive (too far, not in time): its answer.
            body = await upstream.aread()
            await upstream.aclose()
            passed = {k: v for k, v in upstream.headers.items() if k.lower() in PASSED}
            return Response(body, status_code=upstream.status_code, headers=passed)
        if upstream.status_code not in (200, 206):
            await upstream.aclose()
            lookup.metrics.forwards.labels(wanted.kind, "missing").inc()
            return None
        lookup.metrics.forwards.labels(wanted.kind, "ok").inc()
        passed = {k: v for k, v in upstream.headers.items() if k.lower() in PASSED}
        return StreamingResponse(
            _relay(upstream), status_code=upstream.status_code, headers=passed,
            background=BackgroundTask(upstream.aclose),
        )  # fmt: skip


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """The peer's body, one chunk at a time; a peer that fails mid-body ends it short
    (the client sees fewer bytes than ``Content-Length`` and retries)."""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in upstream.aiter_raw(CHUNK):
            yield chunk


class MediaLookup:
    """The sources in order; the routes in :mod:`signalling.routes.mediafiles` call
    :meth:`respond`."""

    def __init__(
        self, ctx: NodeContext, plane: RecordingPlane, hops: Hops, objects: ObjectFetch
    ) -> None:
        self.ctx = ctx
        self.media = plane.media
        self.waits = plane.waits
        self.target = target_duration(ctx.settings.record_segment_s, plane.config.part_s)
        self.me = ctx.settings.node_id
        self.clips = ClipStore(ctx.redis)
        self.metrics = LookupMetrics(ctx)
        disk, bucket, peer = (
            LocalDisk(self),
            ObjectStorage(self, plane, objects),
            PeerNode(self, hops),
        )
        self.sources: list[Source] = [disk, bucket, peer]
        # A live playlist from the recording node first (low-latency parts, blocking
        # reloads), the bucket's plain one when that node is gone or does not answer.
        self.playlist_sources: list[Source] = [disk, peer, bucket]

    async def respond(self, request: Request, wanted: Wanted) -> Response:
        """The file's response from the first source that has it; ``media_not_found``
        (``clip_not_found`` for clip files) when none has it."""
        hop = self.verify_hop(request, wanted.room)
        sources = self.playlist_sources if wanted.kind == "playlist" else self.sources
        try:
            for source in sources:
                if hop and not source.local:
                    continue
                try:
                    answer = await source.answer(request, wanted)
                except LivecoreError as exc:
                    last = source is sources[-1]
                    if last or exc.code is not ErrorCode.MEDIA_UNAVAILABLE or source.local:
                        raise
                    continue  # the node holding it did not answer: the bucket may have it
                if answer is not None:
                    return answer
        except (RedisError, OSError) as exc:
            raise LivecoreError(ErrorCode.STORE_UNAVAILABLE, f"media lookup: {exc}") from None
        if wanted.kind == "clip":
            raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no such clip file: {request.url.path}")
        raise LivecoreError(ErrorCode.MEDIA_NOT_FOUND, f"no such media: {request.url.path}")

    def verify_hop(self, request: Request, room: str) -> bool:
        """Whether this is another node's request (a valid node token for ``room``)."""
        request.state.media_hop = hop = peerhop.verify(self.ctx, request, room)
        return hop

    @staticmethod
    def is_hop(request: Request) -> bool:
        return bool(getattr(request.state, "media_hop", False))

    def count_read(self, wanted: Wanted, hop: bool) -> None:
        self.metrics.reads.labels(wanted.kind, "node" if hop else "client").inc()

    async def replay_cache(self, wanted: Wanted) -> str:
        """``immutable`` for the current version of the replay (``?v=``), else a minute."""
        holder = await self.held(wanted)
        current = holder is not None and holder.tag != "" and holder.tag == wanted.version
        return IMMUTABLE if current else "public, max-age=60"

    async def held(self, wanted: Wanted) -> Held | None:
        """The node that wrote ``wanted`` (Valkey), tagged for playlists and replays."""
        nodes = self.ctx.stores.nodes
        if wanted.kind == "playlist":
            return await nodes.latest(wanted.room)
        if wanted.kind == "replay":
            return await nodes.replay_holder(wanted.room)
        if wanted.kind == "segment":
            return await nodes.stream_holder(wanted.room, wanted.stream)
        clip = await self.clips.get(wanted.room, wanted.clip)
        return await nodes.stream_holder(wanted.room, clip.stream) if clip is not None else None
