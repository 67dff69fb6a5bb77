"""A room's live highlights: signals in, clips out (the API the hub calls).

One ``HighlightsService`` exists per room while its host's stream is being
recorded (``RecordingPlane.highlights(room)``; ``None`` otherwise, then
signals have nowhere to go and are dropped). All methods are called on the
event loop and return at once:

- ``signal(kind, n=1)``: ``kind`` one of ``livecore.highlights.Signal``
  (``comment``, ``like``, ``vote``, ``join``, ``arrival``, ``signup``);
- ``mark()``: the host marked a moment (the ``mark`` message);
- ``product_pinned(product)``: a product card was pinned (its name), or
  ``None`` when the product card was removed.

Every second the detector (``livecore.highlights.Detector``, stream time =
clock time since the recording's first keyframe) is advanced; each decided
highlight is cut on the media worker once the segments covering it are on
disk, stored (``ClipStore``), and announced: ``RecordingPlane.on_clip_ready``
is called with ``(room, payload)`` and the payload is offered to every
``events()`` iterator. The payload is the ``clip_ready`` event of
docs/protocol.md: ``{"t": "clip_ready", "clip": {...}}``; its ``reason`` carries
the highlight's ``window`` ``[start, end]`` in stream seconds.

``time_scale`` (the ``--highlight-time-scale`` server option, 1 in
production) is for benchmarks that replay an audience trace X times faster
than it happened: the detector then reads stream time × X (so its
parameters keep meaning seconds of the trace), and a decided window
``[a, b]`` is cut from the media at ``[a / X, b / X]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from livecore.clips import Clip, title_for
from livecore.clock import Clock
from livecore.highlights import Detector, DetectorParams, Highlight, Signal
from media import clipper
from media.mediadir import new_clip_id
from media.worker import WorkerBusy

if TYPE_CHECKING:
    from livecore.store.clips import ClipStore
    from media.mediadir import MediaDir
    from media.recorder import Recording
    from media.segments import Segment
    from media.worker import MediaWorker
    from signalling.services.recording_metrics import RecordingMetrics

log = logging.getLogger("livecore.highlights")
TICK_S = 1.0
EVENTS_QUEUE = 16
"""clip_ready payloads an ``events()`` reader may leave unread (older ones are dropped)."""
MAX_CUTS_IN_FLIGHT = 4


class ClipPlane(Protocol):
    """What a service needs from its node's recording plane
    (:class:`signalling.services.recording.RecordingPlane` is the one)."""

    metrics: RecordingMetrics
    media: MediaDir
    worker: MediaWorker
    clips: ClipStore

    async def clip_ready(self, room: str, payload: dict[str, Any]) -> None: ...

    async def delete_clip_files(self, room: str, clip: str) -> None: ...

    def clip_stored(self, room: str, clip: str) -> None: ...


class HighlightsService:
    """Highlights and clips of one room's current stream (see the module doc)."""

    def __init__(
        self,
        room: str,
        recording: Recording,
        plane: ClipPlane,
        clock: Clock,
        params: DetectorParams | None = None,
        *,
        time_scale: float = 1.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.room = room
        self.recording = recording
        self.plane = plane
        self.clock = clock
        self.detector = Detector(params)
        self.time_scale = time_scale
        self.made: list[dict[str, Any]] = []
        """Public records of the clips made for this stream (bounded by the detector's cap)."""
        self._readers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._cuts: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CUTS_IN_FLIGHT)
        self._closed = False

    # -- what the hub calls -------------------------------------------------------

    def now(self) -> float | None:
        """Stream seconds now, or None before the first keyframe was recorded."""
        started = self.recording.started_at
        return None if started is None else max(0.0, self.clock.time() - started)

    def detector_now(self) -> float | None:
        """The detector's time now: stream seconds × ``time_scale`` (None: not yet)."""
        t = self.now()
        return None if t is None else t * self.time_scale

    def signal(self, kind: Signal | str, n: int = 1) -> None:
        """Count ``n`` audience signals of ``kind`` now (ValueError for an unknown kind)."""
        t = self.detector_now()
        if t is not None and not self._closed:
            self.detector.add(Signal(kind), t, n)

    def mark(self) -> float | None:
        """The host marked this moment; returns its stream time (None: not recording yet)."""
        t = self.detector_now()
        if t is not None and not self._closed:
            self.detector.mark(t)
        return None if t is None else t / self.time_scale

    def product_pinned(self, product: str | None) -> None:
        t = self.detector_now()
        if t is not None and not self._closed:
            self.detector.product_pinned(product, t)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """``clip_ready`` payloads as clips are made, until the stream's service closes."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(EVENTS_QUEUE)
        self._readers.add(q)
        try:
            while True:
                item = await q.get()
                if not item:
                    return
                yield item
        finally:
            self._readers.discard(q)

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._tick(), name=f"highlights-{self.room}"
        )

    async def close(self) -> None:
        """The stream ended: decide what is open, cut it, end the ``events()`` iterators."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        t = self.detector_now()
        if t is not None:
            for h in self.detector.end(t):
                self._cut_later(h)
        if self._cuts:
            await asyncio.gather(*self._cuts, return_exceptions=True)
        for q in list(self._readers):
            self._offer(q, {})

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            t = self.detector_now()
            if t is None:
                continue
            for h in self.detector.advance(t):
                self._cut_later(h)

    # -- cutting ------------------------------------------------------------------

    def _cut_later(self, h: Highlight) -> None:
        task = asyncio.ensure_future(self._cut(h))
        self._cuts.add(task)
        task.add_done_callback(self._cuts.discard)

    async def _covered(self, end: float) -> bool:
        """Wait until the segments up to ``end`` are written (or the recording ended)."""
        rec = self.recording
        deadline = asyncio.get_running_loop().time() + 3 * rec.config.segment_s + 30
        while rec.recorded_until < end and not rec.ended.is_set():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def _cut(self, h: Highlight) -> None:
        plane = self.plane
        start, end = h.start / self.time_scale, h.end / self.time_scale
        async with self._slots:
            if not await self._covered(end):
                plane.metrics.clips.labels("not_recorded").inc()
                return
            clip_id = new_clip_id()
            mp4 = plane.media.clip_path(self.room, clip_id, "mp4")
            jpg = plane.media.clip_path(self.room, clip_id, "jpg")
            mp4.parent.mkdir(parents=True, exist_ok=True)
            rec = self.recording
            try:
                result, cut_s = await plane.worker.run(
                    _timed_cut, rec.dir, rec.segments(), start, end, mp4
                )
                await plane.worker.run(clipper.thumbnail, mp4, jpg)
            except (WorkerBusy, clipper.NothingToCut, OSError, ValueError) as exc:
                plane.metrics.clips.labels("failed").inc()
                log.warning("room %s: highlight %.1f-%.1f not cut: %s", self.room, start,
                            end, exc)  # fmt: skip
                await plane.delete_clip_files(self.room, clip_id)
                return
        plane.metrics.cut_seconds.inc(cut_s)
        plane.metrics.cut_media_seconds.inc(result.duration)
        reason = {**h.reason(), "window": [round(start, 3), round(end, 3)]}
        if self.time_scale != 1:
            reason["time_scale"] = self.time_scale
        clip = Clip(
            id=clip_id,
            room=self.room,
            stream=rec.dir.name,
            kind=h.kind.value,
            title=title_for(h.kind.value, h.product),
            start=result.stream_start,
            duration=result.duration,
            created_at=int(self.clock.time()),
            product=h.product,
            reason=reason,
        )
        try:
            dropped = await plane.clips.add(clip)
        except (RedisError, OSError) as exc:
            plane.metrics.clips.labels("failed").inc()
            log.warning("room %s: clip not stored: %s", self.room, exc)
            await plane.delete_clip_files(self.room, clip_id)
            return
        for old in dropped:
            await plane.delete_clip_files(self.room, old)
        plane.clip_stored(self.room, clip_id)
        plane.metrics.clips.labels("made").inc()
        public = clip.public()
        payload: dict[str, Any] = {"t": "clip_ready", "clip": public}
        if len(self.made) < 2 * self.detector.p.max_per_stream:
            self.made.append(public)
        for q in list(self._readers):
            self._offer(q, payload)
        await plane.clip_ready(self.room, payload)

    @staticmethod
    def _offer(q: asyncio.Queue[dict[str, Any]], item: dict[str, Any]) -> None:
        if q.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
        q.put_nowait(item)


def _timed_cut(
    directory: Path, segments: Sequence[Segment], start: float, end: float, dst: Path
) -> tuple[clipper.CutResult, float]:
    """``clipper.cut_clip`` and the wall seconds it took (run on the media worker)."""
    began = time.perf_counter()
    result = clipper.cut_clip(directory, segments, start, end, dst)
    return result, time.perf_counter() - began
