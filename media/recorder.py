"""Recording one publisher's encoded stream into keyframe-aligned fMP4 segments.

``Recording`` owns one worker thread and a bounded queue. The event loop side
calls ``put(kind, packet)`` once per encoded frame: O(1), a reference and its
arrival time go on the queue, nothing is copied or muxed on the loop. When
the queue is full the recording drops frames until the next video keyframe
(``stats.dropped``), so the picture resumes cleanly and the loop never waits.

The worker muxes by stream copy (PyAV, no decoder or encoder is ever
created) into one fragmented MP4 (``frag_keyframe``: a fragment starts at
every video keyframe), cut as it is written into:

- ``init.mp4`` (``ftyp`` + ``moov``) and ``segNNNNNN.m4s`` (``moof`` + ``mdat``,
  one per GOP): the HLS segments and the clipper's input, kept for the
  rolling window (``window_s``);
- ``full.mp4``: init + every fragment, the whole stream while it lives
  (fragments concatenate into a valid file), remuxed into the replay when the
  stream ends;
- ``index.m3u8``: the HLS playlist over the segments on disk (``#EXT-X-ENDLIST``
  once the stream ended), replaced atomically after each segment.

Time: output timestamps start at 0 at the first video keyframe. Video keeps
its RTP clock (90 kHz); audio (48 kHz) is placed by its arrival time relative
to that keyframe, then by its own pts, so the two stay within a frame.
H.264 only: Annex-B in, the MP4 muxer writes ``avcC`` from the SPS/PPS of the
first keyframe. VP8 is not recorded (see docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import fractions
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import av

from media.container import (
    BoxSplitter,
    fragment_start,
    h264_dimensions,
    h264_parameter_sets,
    opus_head,
)

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

log = logging.getLogger("livecore.recorder")

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)
INIT_NAME = "init.mp4"
FULL_NAME = "full.mp4"
PLAYLIST_NAME = "index.m3u8"
_END = object()


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    """Bounds of one recording (flags of ``livecore serve``, docs/operations.md)."""

    segment_s: float = 2.0
    """A keyframe is asked of the publisher when none came for this long: the longest
    segment (GOP) of a browser publisher, whose encoder sends keyframes only when asked."""
    window_s: float = 600.0
    """Segments kept for clips and HLS (a rolling window)."""
    queue_frames: int = 1024
    """Frames waiting for the worker before it drops to the next keyframe (~12 s of A+V)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One fragment on disk: ``[start, start + duration)`` seconds of the stream."""

    index: int
    start: float
    duration: float
    name: str
    size: int

    @property
    def end(self) -> float:
        return self.start + self.duration


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


def segment_name(index: int) -> str:
    return f"seg{index:06d}.m4s"


def playlist(segments: list[Segment], *, ended: bool, prefix: str = "") -> str:
    """An HLS media playlist (RFC 8216, version 7: fMP4 with ``EXT-X-MAP``)."""
    target = max((s.duration for s in segments), default=2.0)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, round(target + 0.499))}",
        f"#EXT-X-MEDIA-SEQUENCE:{segments[0].index if segments else 0}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{prefix}{INIT_NAME}"',
    ]
    for s in segments:
        lines += [f"#EXTINF:{s.duration:.3f},", f"{prefix}{s.name}"]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _Sink:
    """File-like object PyAV writes the fragmented MP4 into; hands on whole boxes."""

    def __init__(self, on_box: Callable[[bytes, bytes], None]) -> None:
        self._split = BoxSplitter()
        self._on_box = on_box
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._pos += len(data)
        for kind, box in self._split.feed(bytes(data)):
            self._on_box(kind, box)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass


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
        name: str = "",
        clock: Callable[[], float] = time.time,
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
        self._on_segment = on_segment
        self._on_done = on_done
        # SimpleQueue (C): put never takes a Python-level lock the worker may hold, so
        # the loop never waits for the worker (queue.Queue's condition convoys under
        # the GIL: ~100 µs per put measured). Bounded by the size check in put().
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max = self.config.queue_frames
        self._skipping = True  # until the first video keyframe
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._thread = threading.Thread(target=self._run, name=f"rec-{self.name}", daemon=True)
        self._out: Any = None
        self._vs: Any = None
        self._as: Any = None
        self._init: bytes | None = None
        self._moof: bytes | None = None
        self._full: IO[bytes] | None = None
        self._v0: tuple[int, float] | None = None  # (pts, arrival)
        self._a0: tuple[int, int] | None = None  # (pts, output pts)
        self._last_pts: dict[str, int] = {}
        self._index = 0
        self._thread_started = False

    # -- event loop side ----------------------------------------------------------

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._thread_started = True
        self._thread.start()

    def put(self, kind: str, packet: EncodedPacket) -> None:
        """Queue one encoded frame (O(1)); drops to the next video keyframe when full."""
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
        self._queue.put((kind, packet, time.monotonic()))
        if self.started_at is None:
            self.started_at = self._clock()
        self._skipping = False

    def finish(self) -> None:
        """The stream ended: write what is queued, close the files, then ``on_done``."""
        if not self._thread_started:
            self.ended.set()
            return
        self._queue.put(_END)  # never waits (the queue's bound applies to frames only)

    def segments(self) -> list[Segment]:
        """The segments on disk now, oldest first (a snapshot, safe from any thread)."""
        with self._lock:
            return list(self._segments)

    @property
    def recorded_until(self) -> float:
        """Stream seconds covered by finished segments."""
        with self._lock:
            return self._segments[-1].end if self._segments else 0.0

    @property
    def full_path(self) -> Path:
        return self.dir / FULL_NAME

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

    def _open(self, packet: bytes) -> bool:
        sets = h264_parameter_sets(packet)
        if sets is None:
            return False
        sps, pps = sets
        width, height = h264_dimensions(sps)
        self._full = (self.dir / FULL_NAME).open("wb")
        out = av.open(
            _Sink(self._box),
            mode="w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
        )
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
            if kind != "video" or not packet.is_keyframe or not self._open(bytes(packet)):
                return
            self._v0 = (pts, arrival)
        assert self._v0 is not None
        if kind == "video":
            out_pts = pts - self._v0[0]
            stream = self._vs
        else:
            if self._as is None:
                return
            if self._a0 is None:
                lead = round((arrival - self._v0[1]) / AUDIO_TB)
                self._a0 = (pts, max(0, lead))
            out_pts = pts - self._a0[0] + self._a0[1]
            stream = self._as
        if out_pts <= self._last_pts.get(kind, -1):
            return  # never back in time (the muxer would refuse)
        self._last_pts[kind] = out_pts
        copy = av.Packet(bytes(packet))
        copy.pts = copy.dts = out_pts
        copy.time_base = stream.time_base
        copy.is_keyframe = kind == "audio" or bool(packet.is_keyframe)
        copy.stream = stream
        self._out.mux(copy)
        self.stats.frames_muxed += 1

    def _box(self, kind: bytes, box: bytes) -> None:
        """A top-level box of the fragmented output: init, or half of a fragment."""
        if kind == b"ftyp":
            self._init = box
        elif kind == b"moov":
            self._init = (self._init or b"") + box
            write_atomic(self.dir / INIT_NAME, self._init)
            self._append_full(self._init)
        elif kind == b"moof":
            self._moof = box
        elif kind == b"mdat" and self._moof is not None:
            moof, self._moof = self._moof, None
            self._fragment(moof, moof + box)
        # mfra (written on close) is an optional index: left out.

    def _fragment(self, moof: bytes, data: bytes) -> None:
        start = (fragment_start(moof, 1) or 0) / 90000
        name = segment_name(self._index)
        write_atomic(self.dir / name, data)
        self._append_full(data)
        done = None
        with self._lock:
            if self._segments and self._segments[-1].duration <= 0:
                prev = self._segments[-1]
                done = Segment(prev.index, prev.start, start - prev.start, prev.name, prev.size)
                self._segments[-1] = done
            self._segments.append(Segment(self._index, start, 0.0, name, len(data)))
        self._index += 1
        self.stats.segments += 1
        self.stats.bytes_written += len(data)
        # A segment's duration is known when the next one begins: publish it now.
        if done is not None:
            self._published(done)

    def _published(self, seg: Segment) -> None:
        self._prune()
        self._write_playlist(ended=False)
        if self._on_segment is not None:
            self._on_segment(seg)

    def _append_full(self, data: bytes) -> None:
        if self._full is not None:
            self._full.write(data)

    def _prune(self) -> None:
        """Drop segments that left the rolling window (the full recording keeps them)."""
        with self._lock:
            if not self._segments:
                return
            horizon = self._segments[-1].start - self.config.window_s
            gone = []
            while len(self._segments) > 2 and self._segments[0].end < horizon:
                gone.append(self._segments.popleft())
        for seg in gone:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / seg.name).unlink()

    def _finished_segments(self) -> list[Segment]:
        with self._lock:
            return [s for s in self._segments if s.duration > 0]

    def _write_playlist(self, *, ended: bool) -> None:
        # URIs carry the stream's directory: the playlist is served as
        # /hls/<room>/index.m3u8 for the room's newest stream, segments under it.
        text = playlist(self._finished_segments(), ended=ended, prefix=f"{self.dir.name}/")
        write_atomic(self.dir / PLAYLIST_NAME, text.encode())

    def _close(self) -> None:
        out, self._out = self._out, None
        last_video = self._last_pts.get("video")
        if out is not None:
            try:
                out.close()  # flushes the last fragment
            except (av.FFmpegError, OSError) as exc:
                log.warning("recording %s: closing the muxer failed: %s", self.name, exc)
        with self._lock:
            if self._segments and self._segments[-1].duration <= 0 and last_video is not None:
                last = self._segments[-1]
                end = (last_video + 3000) / 90000  # one frame past the last one (30 fps)
                self._segments[-1] = Segment(
                    last.index, last.start, max(0.001, end - last.start), last.name, last.size
                )
        if self._full is not None:
            self._full.close()
            self._full = None
        if self._init is not None:
            self._write_playlist(ended=True)
            segs = self.segments()
            if segs and self._on_segment is not None:
                self._on_segment(segs[-1])
