"""The node's recording plane: hosts' streams → segments, HLS, replay, highlight clips.

``MediaPlane.publish`` calls ``stream_started(room, session)`` for a host's
WHIP session (the one hook in the media plane). From there:

- a ``Recording`` (worker thread) fed by ``media.recordtap.feed`` from the
  session's relays, in its own task; LL-HLS parts, segments and playlists on
  disk, continuing the room's previous stream's playlist and ended when the
  room ends (``signalling.services.hlsstreams``);
- a ``HighlightsService`` for the room (``highlights(room)``), which reads
  every node's engagement from Valkey and cuts clips as highlights are decided;
- when the stream ends: the replay is remuxed on the media worker (appended to
  the room's replay when there is one: a host who published again within the
  end grace, after a reload or on a new phone, gets one replay of the whole
  live), the room's public state gets ``replay``, the open highlights are
  decided and cut;
- with object storage on (``--s3-endpoint``), each finished clip, thumbnail
  and replay is handed to the ``media.uploader.Uploader`` and leaves the
  disk once it is in the bucket.

Blocking jobs run off the loop on two ``MediaWorker`` lanes, so that a clip
cut never waits behind a long replay remux: ``worker`` (clip cuts,
thumbnails) and ``remux`` (replays, pruning). The disk budget, live
recordings counted, is enforced every ``PRUNE_EVERY_S`` (``media.mediadir.prune``).
VP8 publishers are not recorded: logged once per stream, counted in
``livecore_recordings_skipped_total{reason="vp8"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from livecore.config import media_root
from livecore.errors import LivecoreError
from livecore.highlights import DetectorParams
from livecore.store.clips import ClipStore
from livecore.store.engagement import EngagementStore
from livecore.store.explains import ExplainStore
from media import clipper
from media.composite import PipComposer
from media.hlsmaster import LAYER_RE
from media.mediadir import MediaDir, Pruned, prune
from media.objectstore import ObjectStore, StoreError
from media.recorder import RecorderConfig, Recording
from media.recordtap import RecordingFeed
from media.relay import Relay
from media.segments import Continuation
from media.transcode import Vp8ToH264
from media.uploader import Uploader
from media.worker import MediaWorker, WorkerBusy
from signalling.services.highlights import HighlightsService
from signalling.services.hlsstreams import Cursors, HlsStreams
from signalling.services.recording_metrics import RecordingMetrics

if TYPE_CHECKING:
    from media.sessions import PublisherSession
    from signalling.node.context import NodeContext

log = logging.getLogger("livecore.recording")
PRUNE_EVERY_S = 10.0
#: Seconds added to what a clip reaches back (see ``RecordingPlane.clip_reach_s``).
CLIP_REACH_MARGIN_S = 60.0
ClipReady = Callable[[str, dict[str, Any]], Awaitable[None] | None]


@dataclass
class _Live:
    recording: Recording
    task: asyncio.Task[None]
    service: HighlightsService
    stream: str
    feed: RecordingFeed
    #: A simulcast host's other layers, each its own recording into the same directory.
    layers: list[tuple[Recording, asyncio.Task[None]]] = field(default_factory=list)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [self.task, *(task for _, task in self.layers)]


class RecordingPlane:
    """Recordings, replays and clips of this node (see the module doc)."""

    def __init__(self, ctx: NodeContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.me = s.node_id
        self.media = MediaDir(media_root(s))
        self.config = RecorderConfig(segment_s=s.record_segment_s, window_s=s.record_window_s)
        self.budget = s.media_budget_bytes
        self.worker = MediaWorker(name="media-clips")
        """The clip lane: cuts and thumbnails (short jobs)."""
        self.remux = MediaWorker(max_pending=8, name="media-remux")
        """The long lane: replays and disk pruning."""
        self._building: set[Path] = set()
        """Recordings whose replay is being built (the budget leaves them alone)."""
        self.clips = ClipStore(ctx.redis)
        self.engagement = EngagementStore(ctx.redis)
        self.explains = ExplainStore(ctx.redis)
        self.metrics = RecordingMetrics(ctx.metrics.registry)
        self.store: ObjectStore | None = None
        """Object storage for finished media (``--s3-endpoint``), or None: the disk only."""
        self.uploader: Uploader | None = None
        self.hls_uploader: Uploader | None = None
        if s.object_store is not None:
            self.store = ObjectStore(s.object_store, self.media.root)
            self.uploader = Uploader(self.store, on_result=self.metrics.count_upload)
            if s.object_store.hls:  # its own thread: live segments never delay a clip
                self.hls_uploader = Uploader(self.store, max_pending=64, staged=(),
                                             on_result=self.metrics.count_upload,
                                             name="media-upload-hls")  # fmt: skip
        self.live: dict[str, _Live] = {}
        #: A KOC's video relay on this node, pulled from their node if need be
        #: (the media plane's, set by the app).
        self.pull_video: Callable[[str, str], Awaitable[Relay | None]] | None = None
        self.hls = HlsStreams(self.media, ctx.rooms, self.hls_uploader, self.live.__contains__,
                              self._spawn)  # fmt: skip
        self.waits = self.hls.waits
        """Wakes HLS requests held for a part or segment (``signalling.services.hlswait``)."""
        self.detector_params: DetectorParams | None = None
        """Highlight detector parameters for new streams (None: the defaults)."""
        self.on_clip_ready: ClipReady | None = None
        """Called with ``(room, clip_ready payload)`` for every clip (the hub's emit)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._prune_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.media.root.mkdir(parents=True, exist_ok=True)
        self._prune_task = self._loop.create_task(self._prune_loop(), name="media-prune")
        for uploader in (self.uploader, self.hls_uploader):
            if uploader is not None:
                uploader.start()  # the clips one's first sweep finds what a last run left

    async def stop(self) -> None:
        if self._prune_task is not None:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prune_task
        lives = list(self.live.values())
        tasks = [task for live in lives for task in live.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for live in lives:  # the worker threads write what is queued, then hand over
            for rec in (live.recording, *(r for r, _ in live.layers)):
                await loop.run_in_executor(None, rec.join, 10.0)
        await asyncio.sleep(0.05)  # their on_done callbacks schedule _ended on this loop
        # Give the replays of streams that just ended a moment to finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=10)
        self.worker.close()
        self.remux.close()
        for uploader in (self.uploader, self.hls_uploader):
            if uploader is not None:  # a moment for what was just made; the rest stays
                await loop.run_in_executor(None, uploader.wait_idle, 10.0)
                await loop.run_in_executor(None, uploader.close)

    @staticmethod
    async def _held(note: Awaitable[None]) -> None:
        """Write where a file is (Valkey); a store outage only costs other nodes' reads."""
        with contextlib.suppress(RedisError, OSError):
            await note

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- streams ------------------------------------------------------------------

    def highlights(self, room: str) -> HighlightsService | None:
        """The room's highlight service while its host's stream is recorded."""
        live = self.live.get(room)
        return live.service if live is not None else None

    async def pinned_product(self, room: str) -> str | None:
        """The name on the room's pinned product card (None: no product card)."""
        card = (await self.ctx.stores.bus.state(room)).get("card:product")
        name = card.get("name") if isinstance(card, dict) else None
        return name if isinstance(name, str) and name else None

    def recording(self, room: str) -> Recording | None:
        live = self.live.get(room)
        return live.recording if live is not None else None

    def stream_started(
        self, room: str, session: PublisherSession, cursors: Cursors | None = None
    ) -> None:
        """Record the host's new WHIP session (replaces a previous one of the room);
        ``cursors``: where the room's newest stream left its playlists, if on another node
        (``HlsStreams.cursors``)."""
        if not self.ctx.settings.record:
            return
        video = session.relays.get("video")
        if video is None or video.codec.lower() not in ("video/h264", "video/vp8"):
            reason = "no_video" if video is None else "codec"
            self.metrics.skipped.labels(reason).inc()
            log.warning(
                "room %s: stream not recorded (%s): HLS, replay and clips need video",
                room, reason,
            )  # fmt: skip
            return
        continuation = self.hls.continuation(room, "", cursors)
        carried = {rid.lower(): self.hls.continuation(room, rid.lower(), cursors)
                   for rid in list(session.layers)[1:] if LAYER_RE.match(rid.lower())}  # fmt: skip
        directory = self.media.new_stream_dir(room, self.ctx.clock.time())
        loop = asyncio.get_running_loop()
        recording = Recording(
            directory,
            audio="audio" in session.relays,
            config=self.config,
            name=f"{room}/{directory.name}",
            clock=self.ctx.clock.time,
            on_done=functools.partial(self._done_in_thread, loop, room),
            on_segment=self.hls.on_segment(room, directory),
            on_change=self.waits.notifier(loop, room),
            continuation=continuation,
        )
        self.waits.local.add(room)
        service = HighlightsService(room, recording, self, self.ctx.clock, self.engagement,
                                    self.detector_params, node=self.ctx.settings.node_id,
                                    time_scale=self.ctx.settings.highlight_time_scale,
                                    pinned=self.pinned_product)  # fmt: skip
        layers = list(session.layers.values())  # best first; empty: one stream
        feeder = RecordingFeed(recording, session.relays, self._count_codec, layers)
        task = loop.create_task(feeder.run(), name=f"record-{room}")
        previous = self.live.get(room)
        live = self.live[room] = _Live(recording, task, service, directory.name, feeder)
        live.layers = self._other_layers(room, directory, session, carried)
        self.metrics.live.set(len(self.live))
        service.start()
        if previous is not None:
            for old in previous.tasks:
                old.cancel()
        # Every node serves its files from here on (signalling/services/medialookup.py).
        # A replay of the live's earlier stream is a part of the live: no replay is
        # offered until this stream's end extends it (a page showing it at the room's
        # end would play the first part only). In this order: an earlier stream's
        # replay finished meanwhile is offered only while its stream is the newest.
        self._spawn(self._held(self._newest_stream(room, directory.name)))
        log.info("room %s: recording into %s", room, directory.name)

    def _other_layers(
        self, room: str, directory: Path, session: PublisherSession,
        carried: dict[str, Continuation | None],
    ) -> list[tuple[Recording, asyncio.Task[None]]]:  # fmt: skip
        """A simulcast host's layers after the first (the top one, recorded above, whose
        files the replay and clips read): each one more recording into the directory,
        one more rendition of the multivariant playlist, continuing that layer's
        playlist of the room's previous stream (``carried``). Layers whose rid is not a
        layer name (``[a-z0-9]{1,8}``, case folded) are not recorded."""
        loop = asyncio.get_running_loop()
        audio = session.relays.get("audio")
        out: list[tuple[Recording, asyncio.Task[None]]] = []
        for rid, relay in list(session.layers.items())[1:]:
            layer = rid.lower()
            if not LAYER_RE.match(layer) or relay.codec.lower() != "video/h264":
                log.info("room %s: layer %r not recorded (name or codec)", room, rid)
                continue
            rec = Recording(
                directory, audio=audio is not None, config=self.config,
                name=f"{room}/{directory.name}/{layer}", clock=self.ctx.clock.time,
                on_change=self.waits.notifier(loop, room), layer=layer,
                on_segment=self.hls.on_segment(room, directory, layer),
                continuation=carried.get(layer),
            )  # fmt: skip
            relay.recorded = True  # dynacast never pauses it: the recorder watches it
            sources = {"video": relay, **({"audio": audio} if audio is not None else {})}
            task = loop.create_task(
                RecordingFeed(rec, sources).run(), name=f"record-{room}-{layer}"
            )
            out.append((rec, task))
        return out

    def records(self, room: str) -> bool:
        """Whether this node records ``room``'s stream now."""
        return room in self.live

    def costream_from(self, room: str, user: str) -> None:
        """A KOC on another node went on air: pull their stream here (one copy per node,
        kept while recorded) and draw it in (signalling/services/mediaplane.py)."""
        if room not in self.live or self.pull_video is None:
            return
        pull = self.pull_video

        async def draw() -> None:
            try:
                video = await pull(room, user)
            except LivecoreError as exc:
                log.warning("room %s: co-stream of %s not recorded: %s", room, user, exc.message)
                return
            if video is not None:
                self.costream(room, video)

        self._spawn(draw())

    def costream(self, room: str, video: Relay | None) -> None:
        """A KOC's video joins the room's recording (picture-in-picture), or leaves it
        (None). Nothing happens where the room is not recorded."""
        live = self.live.get(room)
        if live is not None:
            live.feed.set_guest(video)

    def _count_codec(self, codec: Vp8ToH264 | PipComposer, running: bool) -> None:
        """A transcoder (VP8 host) or composer (co-stream) started (gauge up) or ended
        (its CPU and drops counted)."""
        kind = "composite" if isinstance(codec, PipComposer) else "vp8"
        if running:
            self.metrics.transcoding.labels(kind).inc()
            return
        self.metrics.transcoding.labels(kind).dec()
        self.metrics.transcode_cpu.labels(kind).inc(codec.stats.cpu_s)
        self.metrics.transcode_dropped.labels(kind).inc(codec.stats.dropped)
        log.info(
            "recording %s (%s): %d frames in, %d out, %d dropped, %.1f CPU s",
            kind, "ended", codec.stats.frames_in, codec.stats.frames_out, codec.stats.dropped,
            codec.stats.cpu_s,
        )  # fmt: skip

    @property
    def hls_in_store(self) -> bool:
        """Whether live HLS goes to object storage too (``--s3-hls``), so a node that
        does not have a room's HLS on its disk looks there."""
        return self.hls_uploader is not None

    def _done_in_thread(
        self, loop: asyncio.AbstractEventLoop, room: str, recording: Recording
    ) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to do
            loop.call_soon_threadsafe(self._spawn, self._ended(room, recording))

    async def _ended(self, room: str, recording: Recording) -> None:
        """A recording finished (on the loop): replay, state, last highlights."""
        live = self.live.get(room)
        service = None
        if live is not None and live.recording is recording:
            del self.live[room]
            service = live.service
            self.waits.local.discard(room)
            self.waits.wake(room)
        self.metrics.live.set(len(self.live))
        self.metrics.dropped.inc(recording.stats.dropped)
        self.metrics.recorder_cpu.inc(recording.stats.cpu_s)
        self.metrics.recorded.inc(max(0.0, recording.recorded_until))
        if service is not None:
            await service.close()
        if room not in self.live:  # no newer stream of the room on this node
            await self.hls.finalize_if_ended(room, recording.dir)
        await self._build_replay(room, recording)

    async def _build_replay(self, room: str, recording: Recording) -> None:
        """The replay from the recording's init and segments (no full-length copy was
        written beside them); then the segments kept only for it go."""
        if recording.stats.segments == 0:
            return
        source = recording.dir
        dst = self.media.replay_path(room)
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._building.add(source)
        try:
            if self.store is not None and not dst.exists():
                await self._fetch_earlier_replay(room, dst)
            if dst.exists():  # the host published again in the same live: one replay
                result = await self.remux.run(clipper.extend_replay, dst, source, dst)
            else:
                result = await self.remux.run(clipper.build_replay, source, dst)
        except (WorkerBusy, clipper.NothingToCut, OSError, ValueError) as exc:
            self.metrics.replays.labels("failed").inc()
            log.warning("room %s: replay not built: %s", room, exc)
            return
        finally:
            self._building.discard(source)
        with contextlib.suppress(OSError):
            recording.drop_archived()  # the replay holds them now
        if self.uploader is not None:
            self.uploader.submit(dst)
        self.metrics.replays.labels("built").inc()
        log.info("room %s: replay of %.1f s at %s", room, result.duration, dst.name)
        version = recording.dir.name  # a later stream's replay gets a new URL
        newer = self.live.get(room)
        if newer is not None and newer.recording is not recording:
            return  # the host is on air again: that stream's end offers the whole replay
        with contextlib.suppress(RedisError, OSError):
            await self.ctx.stores.nodes.replay(room, self.me, version)
            url = f"/replay/{room}.mp4?v={version}"
            if not await self.ctx.rooms.set_replay(room, url, stream=version):
                log.info("room %s: a newer stream began: its end offers the replay", room)

    async def _newest_stream(self, room: str, stream: str) -> None:
        await self.ctx.stores.nodes.recording(room, stream, self.me)
        await self.ctx.rooms.set_replay(room, "")

    async def _fetch_earlier_replay(self, room: str, dst: Path) -> None:
        """The replay of the live's earlier stream, back from the bucket, to be extended."""
        assert self.store is not None
        try:
            await self.remux.run(self.store.fetch, dst)
        except StoreError as exc:
            log.warning("room %s: the earlier replay could not be fetched (%s); the replay "
                        "holds this stream only", room, exc)  # fmt: skip

    # -- clips (called by HighlightsService) ----------------------------------------

    def clip_stored(self, room: str, clip: str) -> None:
        """A clip and its thumbnail are complete and listed: to object storage, if on."""
        if self.uploader is None:
            return
        for ext in ("mp4", "jpg"):
            self.uploader.submit(self.media.clip_path(room, clip, ext))

    async def clip_ready(self, room: str, payload: dict[str, Any]) -> None:
        callback = self.on_clip_ready
        if callback is None:
            return
        try:
            result = callback(room, payload)
            if result is not None:
                await result
        except Exception:  # the hub's emit failing must not lose the clip itself
            log.exception("room %s: clip_ready callback failed", room)

    async def delete_clip_files(self, room: str, clip: str) -> None:
        for ext in ("mp4", "jpg"):
            with contextlib.suppress(FileNotFoundError, ValueError):
                self.media.clip_path(room, clip, ext).unlink()
        if self.store is not None:
            try:
                for ext in ("mp4", "jpg"):
                    path = self.media.clip_path(room, clip, ext)
                    await asyncio.to_thread(self.store.delete, path)
            except (*StoreError, ValueError) as exc:
                log.warning("room %s: clip %s left in the bucket: %s", room, clip, exc)

    # -- disk budget ----------------------------------------------------------------

    @property
    def clip_reach_s(self) -> float:
        """How far back from the live edge a clip cut may reach (stream seconds): a clip
        is at most ``max_len_s`` long and decided at most about ``max_len_s`` after it
        began, plus ``CLIP_REACH_MARGIN_S`` for the cut's wait in line."""
        p = self.detector_params or DetectorParams()
        return (2 * p.max_len_s + CLIP_REACH_MARGIN_S) / self.ctx.settings.highlight_time_scale

    async def enforce_budget(self) -> Pruned:
        """Prune the media directory down to the budget (on the remux lane): ended
        recordings, then live ones' archives, replays and clips, live windows."""
        lives = [v.recording for v in self.live.values()]
        result = await self.remux.run(
            functools.partial(prune, self.media, self.budget, lives, keep=set(self._building),
                              clip_reach_s=self.clip_reach_s,
                              keep_finished=self.store is not None)
        )  # fmt: skip
        self.metrics.pruned.inc(result.freed)
        self.metrics.over_budget.set(1 if result.over_budget else 0)
        for room in result.replays:
            with contextlib.suppress(RedisError, OSError):
                await self.ctx.rooms.set_replay(room, "")
        for room, clip in result.clips:
            with contextlib.suppress(RedisError, OSError):
                await self.clips.delete(room, clip)
        if result.freed:
            log.info("media budget: pruned %d bytes", result.freed)
        for directory in result.trimmed:
            log.warning("media budget: live recording %s cut back to the last %.0f s",
                        directory.name, self.clip_reach_s)  # fmt: skip
        if result.over_budget:
            log.warning("media budget exceeded by what live recordings' clips need")
        return result

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            with contextlib.suppress(WorkerBusy, OSError):
                await self.enforce_budget()
