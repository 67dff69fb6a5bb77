"""Where a media URL's file is: this node's disk, else the node that has it.

Every node hands out the same media URLs (HLS, segments, the replay, clip
files), so a request may land on any node. :meth:`MediaLookup.respond` asks
its sources in order and the first that has the file answers:

1. :class:`LocalDisk` — this node's media directory;
2. (object storage, when configured, slots in here: a :class:`Source`);
3. :class:`PeerNode` — the node that wrote it, found in Valkey
   (:mod:`livecore.store.nodes`), reached at its node-to-node URL
   (``--node-url``) and **streamed through** with a bounded buffer (one
   ``CHUNK`` in flight; the client's pace throttles the read).

Streamed through, not redirected: a redirect would hand the node-to-node
address (a private one) to shoppers and to the CDN, and each node's files
would sit in the CDN's cache under another name; streamed, a CDN or nginx in
front sees one URL per file and fetches it once.

A node-to-node request carries ``X-Livecore-Node-Token``: a node token for
the room (role ``node``, a minute long). It is answered from the local
sources only, never forwarded again (no loops); a wrong token is refused
with its ``token_*`` code.

Cache headers a CDN honours: segments, clip files and a versioned replay
(``?v=`` of the current one) ``immutable``; a live playlist
``max-age`` of half a segment (at least 1 s), an ended one 60 s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import httpx
from prometheus_client import Counter
from redis.exceptions import RedisError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.clips import ClipStore
from livecore.store.nodes import Held
from media.mediadir import MediaDir
from signalling.node.context import NodeContext

log = logging.getLogger("livecore.media.lookup")
Kind = Literal["playlist", "segment", "replay", "clip"]
IMMUTABLE = "public, max-age=31536000, immutable"
CORS = {"Access-Control-Allow-Origin": "*"}
NODE_HEADER = "x-livecore-node-token"
#: Lifetime of the token a node fetches another node's file with (used at once).
FETCH_TOKEN_TTL_S = 60
#: Bytes read from a peer node per step (the whole buffer of one streamed response).
CHUNK = 64 * 1024
#: Connections to peer nodes at once; more requests wait up to the pool timeout.
MAX_PEER_CONNECTIONS = 64
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


class Source(Protocol):
    """One place files may be; ``answer`` returns None when it does not have it."""

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
            return self._playlist(directory / "index.m3u8", wanted, hop)
        if wanted.kind == "segment":
            path = media.segment_file(wanted.room, wanted.stream, wanted.name)
            cache = IMMUTABLE
        elif wanted.kind == "clip":
            path = media.clip_path(wanted.room, wanted.clip, wanted.ext)
            cache = IMMUTABLE
        else:
            path = media.replay_path(wanted.room)
            holder = await self.lookup.held(wanted)
            if holder is not None and holder.node != self.lookup.me and not hop:
                return None  # the room's replay was rebuilt on another node
            current = holder is not None and holder.tag != "" and holder.tag == wanted.version
            cache = IMMUTABLE if current else "public, max-age=60"
        if path is None or not path.is_file():
            return None
        self.lookup.count_read(wanted, hop)
        return FileResponse(
            path, media_type=TYPES.get(path.suffix, "application/octet-stream"),
            headers={"Cache-Control": cache, **CORS},
        )  # fmt: skip

    def _playlist(self, path: Path, wanted: Wanted, hop: bool) -> Response | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        live = "#EXT-X-ENDLIST" not in text
        max_age = playlist_max_age(self.lookup.ctx.settings.record_segment_s) if live else 60
        self.lookup.count_read(wanted, hop)
        cache = {"Cache-Control": f"public, max-age={max_age}", **CORS}
        return Response(text, media_type=TYPES[".m3u8"], headers=cache)


class PeerNode:
    """The node that wrote the file, streamed through (see the module doc)."""

    local = False

    def __init__(self, lookup: MediaLookup) -> None:
        self.lookup = lookup
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(10.0, connect=2.0, pool=2.0),
                limits=httpx.Limits(max_connections=MAX_PEER_CONNECTIONS),
            )  # fmt: skip
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def answer(self, request: Request, wanted: Wanted) -> Response | None:
        lookup = self.lookup
        holder = await lookup.held(wanted)
        if holder is None or holder.node == lookup.me:
            return None
        url = await lookup.ctx.stores.nodes.url(holder.node)
        if url is None:  # that node is gone, and with it what only its disk held
            lookup.metrics.forwards.labels(wanted.kind, "missing").inc()
            return None
        token = tokens.mint(lookup.ctx.ring, role=tokens.Role.NODE, room=wanted.room,
                            user=_node_user(lookup.me), ttl_s=FETCH_TOKEN_TTL_S,
                            now=lookup.ctx.clock.time())  # fmt: skip
        headers = {NODE_HEADER: token}
        if "range" in request.headers:
            headers["Range"] = request.headers["range"]
        target = f"{url}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
        client = self.client()
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


def _node_user(node_id: str) -> str:
    user = "node-" + "".join(c if tokens.valid_id(c) else "-" for c in node_id)
    return user[:64]


class MediaLookup:
    """The sources in order; the routes in :mod:`signalling.routes.mediafiles` call
    :meth:`respond`."""

    def __init__(self, ctx: NodeContext, media: MediaDir) -> None:
        self.ctx = ctx
        self.media = media
        self.me = ctx.settings.node_id
        self.clips = ClipStore(ctx.redis)
        self.metrics = LookupMetrics(ctx)
        self.peers = PeerNode(self)
        self.sources: list[Source] = [LocalDisk(self), self.peers]

    async def close(self) -> None:
        await self.peers.close()

    async def respond(self, request: Request, wanted: Wanted) -> Response:
        """The file's response from the first source that has it; ``media_not_found``
        (``clip_not_found`` for clip files) when none has it."""
        hop = self.verify_hop(request, wanted.room)
        try:
            for source in self.sources:
                if hop and not source.local:
                    continue
                answer = await source.answer(request, wanted)
                if answer is not None:
                    return answer
        except (RedisError, OSError) as exc:
            raise LivecoreError(ErrorCode.STORE_UNAVAILABLE, f"media lookup: {exc}") from None
        if wanted.kind == "clip":
            raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no such clip file: {request.url.path}")
        raise LivecoreError(ErrorCode.MEDIA_NOT_FOUND, f"no such media: {request.url.path}")

    def verify_hop(self, request: Request, room: str) -> bool:
        """Whether this is another node's request (a valid node token for ``room``)."""
        token = request.headers.get(NODE_HEADER)
        if token is None:
            request.state.media_hop = False
            return False
        tokens.verify(self.ctx.ring, token, now=self.ctx.clock.time(), room=room,
                      roles=frozenset({tokens.Role.NODE}))  # fmt: skip
        request.state.media_hop = True
        return True

    @staticmethod
    def is_hop(request: Request) -> bool:
        return bool(getattr(request.state, "media_hop", False))

    def count_read(self, wanted: Wanted, hop: bool) -> None:
        self.metrics.reads.labels(wanted.kind, "node" if hop else "client").inc()

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
