"""Recording one publisher's encoded stream into keyframe-aligned fMP4 segments.

``Recording`` owns one worker thread and a bounded queue. The event loop side
calls ``put(kind, packet)`` once per encoded frame: O(1), a reference and its
arrival time go on the queue, nothing is copied or muxed on the loop. When
the queue is full the recording drops frames until the next video keyframe
(``stats.dropped``), so the picture resumes cleanly and the loop never waits.

The worker muxes by stream copy (PyAV, no decoder or encoder is ever
created) into fragmented MP4: a fragment starts at every video keyframe and
after ``part_s`` at most (``frag_keyframe`` + ``frag_duration``), and a
``media.segments.SegmentWriter`` cuts what is written into the low-latency HLS
parts, the segments (the clipper's input and, all of them together, what the
replay is remuxed from when the stream ends), the init segment and the
playlists. One ``Recording`` records one layer (``layer``: "" the top one,
whose files the replay and clips read); a simulcast publisher's layers are
one ``Recording`` each into the same directory.

Time: output timestamps start at 0 at the first video keyframe. Video keeps
its RTP clock (90 kHz); audio (48 kHz) is placed by its arrival time relative
to that keyframe, then by its own pts, so the two stay within a frame.
H.264 only: Annex-B in, the MP4 muxer writes ``avcC`` from the SPS/PPS of a
keyframe; a keyframe with other parameter sets (a browser changing its
resolution under congestion, a co-stream's composite starting or ending)
closes the muxer and opens a new one, so a new init segment describes the
frames after it. A VP8 stream is recorded through
``media.transcode.Vp8ToH264`` (see :mod:`media.recordtap`).
"""

from __future__ import annotations

import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from media.container import h264_dimensions, h264_parameter_sets, opus_head
from media.hlsmaster import avc_codec
from media.segments import Continuation, Segment, SegmentWriter, VideoFormat

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

log = logging.getLogger("livecore.recorder")

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
_END = object()
#: The longest gap between two frames of a track that is taken as time passing (a
#: host's phone in a tunnel); a longer one is a broken clock, and the frame is dropped.
MAX_GAP_S = 600
#: Where in the part target the muxer cuts a part (see ``_open``).
PART_CUT = 0.7


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    """Bounds of one recording (flags of ``livecore serve``, docs/operations.md)."""

    segment_s: float = 2.0
    """A keyframe is asked of the publisher when none came for this long, and a segment
    ends at the first keyframe after it (browsers send keyframes only when asked)."""
    part_s: float = 0.5
    """LL-HLS part target: the longest fragment (``EXT-X-PART-INF:PART-TARGET``)."""
    window_s: float = 600.0
    """Segments kept for clips and HLS (a rolling window)."""
    queue_frames: int = 1024
    """Frames waiting for the worker before it drops to the next keyframe (~12 s of A+V)."""


@dataclass(slots=True)
class RecorderStats:
    frames_in: int = 0
    frames_muxed: int = 0
    dropped: int = 0
    segments: int = 0
    bytes_written: int = 0
    errors: int = 0
    cpu_s: float = 0.0
    """CPU time of the worker thread (set when it ends)."""


class Recording:
    """One stream's recording into ``directory`` (see the module doc).

    ``put`` and ``finish`` are called from the event loop; everything else
    happens on the recording's own thread. ``on_segment(segment)`` and
    ``on_done(recording)`` are called on that thread.
    """

    def __init__(
        self,
        directory: Path,
        *,
        audio: bool,
        config: RecorderConfig | None = None,
        on_segment: Callable[[Segment], None] | None = None,
        on_done: Callable[[Recording], None] | None = None,
        on_change: Callable[[], None] | None = None,
        name: str = "",
        clock: Callable[[], float] = time.time,
        layer: str = "",
        continuation: Continuation | None = None,
    ) -> None:
        self.dir = directory
        self.config = config or RecorderConfig()
        self.audio = audio
        self.name = name or directory.name
        self.stats = RecorderStats()
        self.started_at: float | None = None
        """``clock()`` when the first keyframe arrived: stream time 0 (set on the loop)."""
        self._clock = clock
        self.ended = threading.Event()
        self._on_done = on_done
        # SimpleQueue (C): put never takes a Python-level lock the worker may hold, so
        # the loop never waits for the worker (queue.Queue's condition convoys under
        # the GIL: ~100 µs per put measured). Bounded by the size check in put().
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max = self.config.queue_frames
        self._skipping = True  # until the first video keyframe
        cfg = self.config
        self._files = SegmentWriter(
            directory, window_s=cfg.window_s, counters=self.stats, on_segment=on_segment,
            on_change=on_change, segment_s=cfg.segment_s, part_s=cfg.part_s, layer=layer,
            continuation=continuation,
        )  # fmt: skip
        self._sets: tuple[bytes, bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=f"rec-{self.name}", daemon=True)
        self._out: Any = None
        self._vs: Any = None
        self._as: Any = None
        self._v0: tuple[int, float] | None = None  # (pts, arrival)
        self._a0: tuple[int, int] | None = None  # (pts, output pts)
        self._last_pts: dict[str, int] = {}
        self._thread_started = False

    # -- event loop side ----------------------------------------------------------

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread_started = True
        self._thread.start()

    def put(self, kind: str, packet: EncodedPacket, arrived: float | None = None) -> None:
        """Queue one encoded frame (O(1)); drops to the next video keyframe when full.
        ``arrived``: its ``time.monotonic()`` arrival, when it is put later than that
        (a transcoded frame)."""
        stats = self.stats
        stats.frames_in += 1
        key = kind == "video" and bool(packet.is_keyframe)
        if self._skipping and not key:
            stats.dropped += 1
            return
        if self._queue.qsize() >= self._max:
            stats.dropped += 1
            self._skipping = True
            return
        if self.started_at is None:  # before the worker can see the frame
            self.started_at = self._clock()
        self._queue.put((kind, packet, time.monotonic() if arrived is None else arrived))
        self._skipping = False

    def finish(self) -> None:
        """The stream ended: write what is queued, close the files, then ``on_done``."""
        if not self._thread_started:
            self.ended.set()
            return
        self._queue.put(_END)  # never waits (the queue's bound applies to frames only)

    def segments(self) -> list[Segment]:
        """The segments on disk now, oldest first (a snapshot, safe from any thread)."""
        return self._files.segments()

    @property
    def recorded_until(self) -> float:
        """Stream seconds covered by finished segments."""
        return self._files.recorded_until

    @property
    def files(self) -> SegmentWriter:
        return self._files

    def drop_archived(self) -> int:
        """Delete the segments kept only for the replay; bytes freed (any thread)."""
        return self._files.drop_archived()

    def trim(self, keep_s: float) -> int:
        """Shrink the window to the last ``keep_s`` seconds; bytes freed (any thread)."""
        return self._files.trim(keep_s)

    def join(self, timeout: float | None = None) -> None:
        if self._thread_started:
            self._thread.join(timeout)

    # -- worker thread ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                try:
                    self._mux(*item)
                except (av.FFmpegError, ValueError, OSError) as exc:
                    self.stats.errors += 1
                    log.warning("recording %s: frame not written: %s", self.name, exc)
        finally:
            self._close()
            self.stats.cpu_s = time.thread_time()
            self.ended.set()
            if self._on_done is not None:
                try:
                    self._on_done(self)
                except Exception:  # the callback's failure must not kill the thread silently
                    log.exception("recording %s: on_done failed", self.name)

    def _open(self, packet: bytes, first_s: float) -> bool:
        """A muxer for the frames from this keyframe on (its parameter sets)."""
        sets = h264_parameter_sets(packet)
        if sets is None:
            return False
        sps, pps = sets
        width, height = h264_dimensions(sps)
        if self._out is None and self.started_at is not None and self._sets is None:
            self._files.epoch = self.started_at
        self._sets = sets
        sink = self._files.begin(first_s=first_s, video=VideoFormat(width, height, avc_codec(sps)))
        # The muxer cuts a part at the first frame at or past frag_duration, and the
        # part's last frame lasts until the next one: cutting at 70 % of the part
        # target leaves room for a 150 ms gap between two frames (a phone's encoder
        # catching up, a browser under load) before a part outgrows PART-TARGET.
        frag_us = max(100_000, int(self.config.part_s * PART_CUT * 1e6))
        out = av.open(
            sink, mode="w", format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof",
                     "frag_duration": str(frag_us)},
        )  # fmt: skip
        vs: Any = out.add_stream("h264")
        vs.width, vs.height = width, height
        vs.time_base = VIDEO_TB
        vs.codec_context.extradata = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
        self._vs = vs
        if self.audio:
            aus: Any = out.add_stream("opus", rate=48000)
            aus.time_base = AUDIO_TB
            aus.codec_context.layout = "stereo"
            aus.codec_context.extradata = opus_head(2)
            self._as = aus
        out.start_encoding()
        self._out = out
        return True

    def _mux(self, kind: str, packet: EncodedPacket, arrival: float) -> None:
        pts = packet.pts
        if pts is None:
            return
        if self._out is None:
            if kind != "video" or not packet.is_keyframe or not self._open(bytes(packet), 0.0):
                return
            self._v0 = (pts, arrival)
        assert self._v0 is not None
        if kind == "video":
            out_pts = pts - self._v0[0]
            if packet.is_keyframe and out_pts > self._last_pts.get("video", -1):
                self._new_parameters(bytes(packet), out_pts)
            stream = self._vs
        else:
            if self._as is None:
                return
            if self._a0 is None:
                lead = round((arrival - self._v0[1]) / AUDIO_TB)
                self._a0 = (pts, max(0, lead))
            out_pts = pts - self._a0[0] + self._a0[1]
            stream = self._as
        last = self._last_pts.get(kind, -1)
        if out_pts <= last:
            return  # never back in time (the muxer would refuse)
        tb = VIDEO_TB if kind == "video" else AUDIO_TB
        if last >= 0 and (out_pts - last) * tb > MAX_GAP_S:
            # A timestamp from nowhere (a wrapped or corrupt clock): the MP4 muxer
            # aborts the process past 2^31 ticks between two frames. Dropped, counted.
            self.stats.dropped += 1
            if self.stats.dropped % 100 == 1:
                log.warning("recording %s: %s frame %.1f s after the last one: dropped",
                            self.name, kind, float((out_pts - last) * tb))  # fmt: skip
            return
        self._last_pts[kind] = out_pts
        copy = av.Packet(bytes(packet))
        copy.pts = copy.dts = out_pts
        copy.time_base = stream.time_base
        copy.is_keyframe = kind == "audio" or bool(packet.is_keyframe)
        copy.stream = stream
        self._out.mux(copy)
        self.stats.frames_muxed += 1

    def _new_parameters(self, packet: bytes, out_pts: int) -> None:
        """A keyframe whose SPS/PPS differ from the muxer's: a new muxer (init segment)."""
        sets = h264_parameter_sets(packet)
        if sets is None or sets == self._sets:
            return
        self._flush()
        self._open(packet, out_pts / 90000)

    def _flush(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()  # flushes the last fragment
            except (av.FFmpegError, OSError) as exc:
                log.warning("recording %s: closing the muxer failed: %s", self.name, exc)

    def _close(self) -> None:
        self._flush()
        self._files.close()
