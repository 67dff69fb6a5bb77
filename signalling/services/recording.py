"""The node's recording plane: hosts' streams → segments, HLS, replay, highlight clips.

``MediaPlane.publish`` calls ``stream_started(room, session)`` for a host's
WHIP session (the one hook in the media plane). From there:

- a ``Recording`` (worker thread) fed by ``media.recordtap.feed`` from the
  session's relays, in its own task; segments + HLS playlist on disk;
- a ``HighlightsService`` for the room (``highlights(room)``), which reads
  every node's engagement from Valkey and cuts clips as highlights are decided;
- when the stream ends: the replay is remuxed on the media worker (appended to
  the room's replay when there is one: a host who published again within the
  end grace, after a reload or on a new phone, gets one replay of the whole
  live), the room's public state gets ``replay``, the open highlights are
  decided and cut.

Every blocking job (remux, cut, thumbnail, prune) runs on one ``MediaWorker``
thread; the disk budget is enforced every ``PRUNE_EVERY_S``.
VP8 publishers are not recorded: logged once per stream, counted in
``livecore_recordings_skipped_total{reason="vp8"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from livecore.config import media_root
from livecore.highlights import DetectorParams
from livecore.store.clips import ClipStore
from livecore.store.engagement import EngagementStore
from livecore.store.explains import ExplainStore
from media import clipper
from media.mediadir import MediaDir, Pruned, prune
from media.recorder import RecorderConfig, Recording
from media.recordtap import feed
from media.worker import MediaWorker, WorkerBusy
from signalling.services.highlights import HighlightsService
from signalling.services.recording_metrics import RecordingMetrics

if TYPE_CHECKING:
    from media.sessions import PublisherSession
    from signalling.node.context import NodeContext

log = logging.getLogger("livecore.recording")
PRUNE_EVERY_S = 10.0
ClipReady = Callable[[str, dict[str, Any]], Awaitable[None] | None]


@dataclass
class _Live:
    recording: Recording
    task: asyncio.Task[None]
    service: HighlightsService
    stream: str


class RecordingPlane:
    """Recordings, replays and clips of this node (see the module doc)."""

    def __init__(self, ctx: NodeContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.media = MediaDir(media_root(s))
        self.config = RecorderConfig(segment_s=s.record_segment_s, window_s=s.record_window_s)
        self.budget = s.media_budget_bytes
        self.worker = MediaWorker()
        self.clips = ClipStore(ctx.redis)
        self.engagement = EngagementStore(ctx.redis)
        self.explains = ExplainStore(ctx.redis)
        self.metrics = RecordingMetrics(ctx.metrics.registry)
        self.live: dict[str, _Live] = {}
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

    async def stop(self) -> None:
        if self._prune_task is not None:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prune_task
        lives = list(self.live.values())
        for live in lives:
            live.task.cancel()
        await asyncio.gather(*(v.task for v in lives), return_exceptions=True)
        loop = asyncio.get_running_loop()
        for live in lives:  # the worker threads write what is queued, then hand over
            await loop.run_in_executor(None, live.recording.join, 10.0)
        await asyncio.sleep(0.05)  # their on_done callbacks schedule _ended on this loop
        # Give the replays of streams that just ended a moment to finish.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=10)
        self.worker.close()

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

    def stream_started(self, room: str, session: PublisherSession) -> None:
        """Record the host's new WHIP session (replaces a previous one of the room)."""
        if not self.ctx.settings.record:
            return
        video = session.relays.get("video")
        if video is None or video.codec.lower() != "video/h264":
            reason = "no_video" if video is None else "vp8"
            self.metrics.skipped.labels(reason).inc()
            log.warning(
                "room %s: stream not recorded (%s): HLS, replay and clips need H.264 video",
                room, reason,
            )  # fmt: skip
            return
        directory = self.media.new_stream_dir(room, self.ctx.clock.time())
        loop = asyncio.get_running_loop()
        recording = Recording(
            directory,
            audio="audio" in session.relays,
            config=self.config,
            name=f"{room}/{directory.name}",
            clock=self.ctx.clock.time,
            on_done=functools.partial(self._done_in_thread, loop, room),
        )
        service = HighlightsService(room, recording, self, self.ctx.clock, self.engagement,
                                    self.detector_params, node=self.ctx.settings.node_id,
                                    time_scale=self.ctx.settings.highlight_time_scale,
                                    pinned=self.pinned_product)  # fmt: skip
        task = loop.create_task(feed(recording, session.relays), name=f"record-{room}")
        previous = self.live.get(room)
        self.live[room] = _Live(recording, task, service, directory.name)
        self.metrics.live.set(len(self.live))
        service.start()
        if previous is not None:
            previous.task.cancel()
        log.info("room %s: recording into %s", room, directory.name)

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
        self.metrics.live.set(len(self.live))
        self.metrics.dropped.inc(recording.stats.dropped)
        self.metrics.recorder_cpu.inc(recording.stats.cpu_s)
        self.metrics.recorded.inc(max(0.0, recording.recorded_until))
        if service is not None:
            await service.close()
        await self._build_replay(room, recording)

    async def _build_replay(self, room: str, recording: Recording) -> None:
        full = recording.full_path
        if not full.exists() or recording.stats.segments == 0:
            return
        dst = self.media.replay_path(room)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            if dst.exists():  # the host published again in the same live: one replay
                result = await self.worker.run(clipper.extend_replay, dst, full, dst)
            else:
                result = await self.worker.run(clipper.build_replay, full, dst)
        except (WorkerBusy, clipper.NothingToCut, OSError, ValueError) as exc:
            self.metrics.replays.labels("failed").inc()
            log.warning("room %s: replay not built: %s", room, exc)
            return
        with contextlib.suppress(FileNotFoundError):
            full.unlink()  # the replay holds it all now
        self.metrics.replays.labels("built").inc()
        log.info("room %s: replay of %.1f s at %s", room, result.duration, dst.name)
        with contextlib.suppress(RedisError, OSError):
            await self.ctx.rooms.set_replay(room, f"/replay/{room}.mp4")

    # -- clips (called by HighlightsService) ----------------------------------------

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

    # -- disk budget ----------------------------------------------------------------

    def live_dirs(self) -> set[Path]:
        return {v.recording.dir for v in self.live.values()}

    async def enforce_budget(self) -> Pruned:
        """Prune the media directory down to the budget (on the worker)."""
        result = await self.worker.run(prune, self.media, self.budget, self.live_dirs())
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
        if result.over_budget:
            log.warning("media budget exceeded by live recordings alone")
        return result

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            with contextlib.suppress(WorkerBusy, OSError):
                await self.enforce_budget()
