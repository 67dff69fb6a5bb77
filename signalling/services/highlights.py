"""A room's live highlights: every node's signals in, clips out.

One ``HighlightsService`` exists per room while its host's stream is being
recorded on this node (``RecordingPlane.highlights(room)``). It does not
count signals itself: every node serving the room's audience counts the
people per bucket into Valkey (``signalling.services.engagement``), and the
host's marks, pins and 讲解 taps arrive on the room's control stream from
whichever node the host is connected to (``livecore.store.engagement``).

Once the recording's first keyframe is written, the service holds the room's
recording lease (refreshed every ``LEASE_EVERY_S``; without it other nodes
store nothing and answer ``not_recording``), and every ``TICK_S`` it reads
the buckets that every node has flushed (those older than ``LAG_S``) and the
new controls, feeds them to the detector (``livecore.highlights.Detector``,
whose second is one bucket) in time order, and advances it. Each decided
highlight is cut on the media worker once the segments covering it are on
disk, stored (``ClipStore``), and announced: ``RecordingPlane.on_clip_ready``
is called with ``(room, payload)`` and the payload is offered to every
``events()`` iterator. The payload is the ``clip_ready`` event of
docs/protocol.md: ``{"t": "clip_ready", "clip": {...}}``; its ``reason`` carries
the highlight's ``window`` ``[start, end]`` in stream seconds.

``time_scale`` (the ``--highlight-time-scale`` server option, 1 in
production) is for benchmarks that replay an audience trace X times faster
than it happened: a bucket is then 1/X wall second, the detector reads the
trace's own seconds (its parameters keep meaning seconds), and a decided window
``[a, b]`` is cut from the media at about ``[a / X, b / X]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from livecore.clips import Clip, title_for
from livecore.clock import Clock
from livecore.engagement import Control, ControlKind, Lease, bucket
from livecore.highlights import Detector, DetectorParams, Highlight, HighlightKind, Signal
from media import clipper
from media.mediadir import new_clip_id
from media.worker import WorkerBusy

if TYPE_CHECKING:
    from livecore.store.clips import ClipStore
    from livecore.store.engagement import EngagementStore
    from livecore.store.explains import ExplainStore
    from media.mediadir import MediaDir
    from media.recorder import Recording
    from media.segments import Segment
    from media.worker import MediaWorker
    from signalling.services.recording_metrics import RecordingMetrics

log = logging.getLogger("livecore.highlights")
TICK_S = 0.5
LAG_S = 0.6
"""Buckets are read this long after they close: every node flushes every 0.25 s."""
LEASE_TTL_S = 10
LEASE_EVERY_S = 3.0
MAX_CATCHUP = 600
"""Buckets read at most per tick (after a store outage the older ones are skipped)."""
MAX_CONTROLS = 256
KINDS = tuple(s.value for s in Signal)
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
    explains: ExplainStore

    async def clip_ready(self, room: str, payload: dict[str, Any]) -> None: ...

    async def delete_clip_files(self, room: str, clip: str) -> None: ...

    def clip_stored(self, room: str, clip: str) -> None: ...

    def costream_from(self, room: str, user: str) -> None:
        """A KOC went on air on another node: draw that stream into the recording."""


class HighlightsService:
    """Highlights and clips of one room's current stream (see the module doc)."""

    def __init__(
        self,
        room: str,
        recording: Recording,
        plane: ClipPlane,
        clock: Clock,
        store: EngagementStore,
        params: DetectorParams | None = None,
        *,
        node: str = "",
        time_scale: float = 1.0,
        pinned: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        self.room = room
        self.recording = recording
        self.plane = plane
        self.clock = clock
        self.detector = Detector(params)
        self.time_scale = time_scale
        self.store = store
        self.node = node
        self._lease: Lease | None = None
        self._lease_due = 0.0
        self._origin = 0
        """The bucket of the first keyframe: the detector's second 0."""
        self._next = 0
        """The first bucket not read yet."""
        self._after: str | None = None
        """The control stream's id read up to (None: not looked up yet)."""
        self._controls: list[tuple[float, Control]] = []
        self._pinned = pinned
        """The room's pinned product now (a card pinned before going live counts from 0)."""
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

    @property
    def lease(self) -> Lease | None:
        """The room's recording lease this service holds (None before the first keyframe)."""
        return self._lease

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
        """The stream ended: read what every node counted, decide what is open, cut it,
        release the lease and end the ``events()`` iterators."""
        if self._closed:
            return
        self._closed = True
        ended = self.clock.time()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lease is not None:
            await asyncio.sleep(LAG_S)  # the other nodes' last flush
            try:
                await self._read(bucket(ended, self.time_scale))
            except (RedisError, OSError) as exc:
                log.warning("room %s: last engagement not read: %s", self.room, exc)
            for h in self.detector.end(self._detector_time(ended)):
                self._cut_later(h)
            with contextlib.suppress(RedisError, OSError):
                await self.store.release(self.room, self._lease)
        if self._cuts:
            await asyncio.gather(*self._cuts, return_exceptions=True)
        for q in list(self._readers):
            self._offer(q, {})

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._hold()
                if self._lease is not None:
                    now = self.clock.time()
                    await self._read(bucket(now - LAG_S, self.time_scale))
            except (RedisError, OSError) as exc:
                log.warning("room %s: engagement not read: %s", self.room, exc)

    # -- reading every node's engagement ------------------------------------------------

    async def _hold(self) -> None:
        """Take the lease at the first keyframe, then keep it fresh."""
        if self._after is None:
            self._after = await self.store.last_control_id(self.room)
        started = self.recording.started_at
        if started is None:
            return
        now = self.clock.time()
        if self._lease is None:
            self._lease = Lease(self.node, started, self.time_scale, self.recording.dir.name)
            self._origin = bucket(started, self.time_scale)
            self._next = self._origin
            product = await self._pinned(self.room) if self._pinned is not None else None
            if product:
                self._controls.append((0.0, Control(ControlKind.PIN, started, product)))
        elif now < self._lease_due:
            return
        await self.store.hold(self.room, self._lease, LEASE_TTL_S)
        self._lease_due = now + LEASE_EVERY_S

    def _detector_time(self, unix_s: float) -> float:
        return max(0.0, unix_s * self.time_scale - self._origin)

    def _stream_time(self, detector_s: float) -> float:
        started = self.recording.started_at or 0.0
        return max(0.0, (detector_s + self._origin) / self.time_scale - started)

    async def _read(self, horizon: int) -> None:
        """Feed the detector every bucket before ``horizon`` and the controls, in order."""
        first = max(self._next, horizon - MAX_CATCHUP)
        self._after, controls = await self.store.controls(self.room, self._after or "0-0")
        for c in controls:
            if c.kind is ControlKind.COSTREAM and c.product:
                self.plane.costream_from(self.room, c.product)
        queued = self._controls
        queued.extend(
            (self._detector_time(c.at), c) for c in controls if c.kind is not ControlKind.COSTREAM
        )
        queued.sort(key=lambda tc: tc[0])
        del queued[:-MAX_CONTROLS]
        rows = await self.store.counts(self.room, first, horizon, KINDS)
        for i, row in enumerate(rows):
            t = float(first + i - self._origin)
            self._apply_controls(t)
            if row:
                self.detector.add_counts(t, row)
        end = float(horizon - self._origin)
        self._apply_controls(end)
        self._next = max(self._next, horizon)
        for h in self.detector.advance(end):
            self._cut_later(h)

    def _apply_controls(self, until: float) -> None:
        queued = self._controls
        while queued and queued[0][0] < until:
            t, control = queued.pop(0)
            det = self.detector
            if control.kind is ControlKind.MARK:
                det.mark(t)
            elif control.kind is ControlKind.PIN:
                det.product_pinned(control.product, t)
            elif control.kind is ControlKind.EXPLAIN:
                det.explain(control.product, t)
            else:
                det.explain(None, t)

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
        start, end = self._stream_time(h.start), self._stream_time(h.end)
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
        if h.peak is not None:
            reason["peak"] = round(self._stream_time(h.peak), 3)
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
        if h.kind is HighlightKind.EXPLAIN and h.product:
            try:  # the product's top explanations: the least clicked past the cap leave
                fell = await plane.explains.add(self.room, h.product, clip_id, clip.created_at)
            except (RedisError, OSError) as exc:
                log.warning("room %s: explanation not ranked: %s", self.room, exc)
                fell = []
            for old in fell:
                with contextlib.suppress(RedisError, OSError):
                    await plane.clips.delete(self.room, old)
            dropped = [*dropped, *fell]
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
