"""VP8 to H.264 for the recording only: one decode and one encode per stream, off the loop.

A phone whose browser has no H.264 encoder publishes VP8. Its viewers get
the VP8 untouched (the forward path never decodes); HLS, the replay and the
clips need H.264, so the recording of such a stream goes through one
``Vp8ToH264``: the event loop hands it each VP8 frame (``put``: O(1), a
bounded queue; full → frames are dropped up to the next VP8 key frame), its
own thread decodes (FFmpeg's VP8 decoder) and encodes (libx264, constrained
baseline, ``zerolatency``: no frame is held back), and each H.264 frame goes
back to the loop (``call_soon_threadsafe``) into the recording with the
arrival time of the VP8 frame it came from, so audio stays in step.

- Key frames: an IDR with SPS/PPS every ``keyframe_s`` of stream time (the
  HLS segment length), whatever the publisher's own key frames are; the
  publisher is only asked for a VP8 key frame when the decoder needs one
  (start, or after a drop).
- One size: frames are scaled to the first key frame's size (a browser that
  lowers its resolution under congestion does not change the recording's
  init segment); at most ``max_height`` lines (720 by default).
- Cost: the thread's CPU time is counted (``cpu_s``), so the operator's
  metrics show what each transcoded stream costs; PyAV releases the GIL in the
  codec calls, so the loop keeps running meanwhile.
"""

from __future__ import annotations

import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

log = logging.getLogger("livecore.transcode")

VIDEO_TB = fractions.Fraction(1, 90000)
_END = object()


@dataclass(frozen=True, slots=True)
class TranscodeConfig:
    keyframe_s: float = 2.0
    """Stream seconds between the IDRs the encoder makes (the HLS segment length)."""
    bitrate: int = 1_500_000
    """Target of the H.264 encoder, bits/s (a 720p phone picture)."""
    max_height: int = 720
    """Frames taller than this are scaled down (width kept even, aspect kept)."""
    preset: str = "superfast"
    """libx264 preset: the CPU a stream costs against its picture quality."""
    queue_frames: int = 90
    """VP8 frames waiting for the thread (~3 s at 30 fps) before frames are dropped."""


@dataclass(slots=True)
class TranscodeStats:
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    errors: int = 0
    cpu_s: float = 0.0
    """CPU time of the thread so far (updated every frame)."""


Sink = Callable[["EncodedPacket", float], None]
"""Called on the event loop with each H.264 frame and the arrival time of its source."""


def output_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """The recorded picture's size for a ``width`` × ``height`` source. Pure."""
    if height > max_height:
        width, height = round(width * max_height / height), max_height
    return max(2, width - width % 2), max(2, height - height % 2)


class Vp8ToH264:
    """One VP8 stream's transcoder for its recording (see the module doc).

    ``put`` and ``close`` are called from the event loop; the codecs run on the
    transcoder's own thread. ``request_keyframe()`` is called (on the loop) when
    the decoder needs a VP8 key frame.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        loop: Any,
        request_keyframe: Callable[[], object],
        config: TranscodeConfig | None = None,
        name: str = "transcode",
    ) -> None:
        self.config = config or TranscodeConfig()
        self.stats = TranscodeStats()
        self._sink = sink
        self._loop = loop
        self._request_keyframe = request_keyframe
        self._queue: queue.Queue[Any] = queue.Queue()
        self._skipping = True  # until the first key frame
        self.closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, packet: EncodedPacket) -> None:
        """Queue one VP8 frame (O(1)); drops to the next key frame when full."""
        stats = self.stats
        stats.frames_in += 1
        key = bool(packet.is_keyframe)
        if self.closed or (self._skipping and not key):
            stats.dropped += 1
            return
        if self._queue.qsize() >= self.config.queue_frames:
            stats.dropped += 1
            self._skipping = True
            self._request_keyframe()
            return
        self._skipping = False
        self._queue.put((packet, time.monotonic()))

    def close(self) -> None:
        """Stop after the queued frames (never waits)."""
        if not self.closed:
            self.closed = True
            self._queue.put(_END)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        decoder: Any = av.CodecContext.create("vp8", "r")
        out = H264Out(self._sink, self._loop, self.config, self.stats)
        cpu0 = time.thread_time()
        while True:
            item = self._queue.get()
            if item is _END:
                break
            packet, arrived = item
            try:
                frames = decoder.decode(packet)
            except av.error.FFmpegError as exc:
                self.stats.errors += 1
                log.warning("VP8 frame not decoded (%s): waiting for a key frame", exc)
                self._skipping = True
                self._loop.call_soon_threadsafe(self._request_keyframe)
                continue
            for frame in frames:
                out.encode(frame, int(packet.pts), arrived)
            self.stats.cpu_s = time.thread_time() - cpu0
        out.flush()
        self.stats.cpu_s = time.thread_time() - cpu0


class H264Out:
    """The encoding half of a transcoder (used on its thread): pictures of any size in,
    H.264 constrained baseline frames of one size out to ``sink`` on the loop, an IDR
    with SPS/PPS every ``keyframe_s`` of stream time (and on the first picture)."""

    def __init__(
        self, sink: Sink, loop: Any, config: TranscodeConfig, stats: TranscodeStats
    ) -> None:
        self._sink, self._loop, self.config, self.stats = sink, loop, config, stats
        self._encoder: Any = None
        self.size: tuple[int, int] = (0, 0)
        self._last_idr: int | None = None

    def encode(self, frame: Any, pts: int, arrived: float) -> None:
        """Encode ``frame`` (scaled to the first picture's size) with stream time ``pts``."""
        if self._encoder is None:
            self.size = output_size(frame.width, frame.height, self.config.max_height)
            self._encoder = self._open(*self.size)
        picture = frame.reformat(width=self.size[0], height=self.size[1], format="yuv420p")
        self.encode_picture(picture, pts, arrived)

    def encode_picture(self, picture: Any, pts: int, arrived: float) -> None:
        """Encode a yuv420p ``picture`` already of :attr:`size`."""
        picture.pts, picture.time_base = pts, VIDEO_TB
        last = self._last_idr
        due = last is None or (pts - last) * VIDEO_TB >= self.config.keyframe_s
        picture.pict_type = av.video.frame.PictureType.I if due else av.video.frame.PictureType.NONE
        if due:
            self._last_idr = pts
        self._emit(self._encoder.encode(picture), arrived)

    def open(self, width: int, height: int) -> None:
        """Fix the output size before the first picture (else the first picture's)."""
        if self._encoder is None:
            self.size = output_size(width, height, self.config.max_height)
            self._encoder = self._open(*self.size)

    def flush(self) -> None:
        if self._encoder is not None:
            self._emit(self._encoder.encode(None), time.monotonic())

    def _open(self, width: int, height: int) -> Any:
        ctx: Any = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = VIDEO_TB
        ctx.framerate = fractions.Fraction(30, 1)
        ctx.bit_rate = self.config.bitrate
        ctx.profile = "Baseline"
        # forced pictures are IDRs, SPS/PPS go with each, no B-frames, no look-ahead,
        # no key frame of the encoder's own choosing (only the forced ones)
        ctx.options = {
            "preset": self.config.preset,
            "tune": "zerolatency",
            "forced-idr": "1",
            "x264-params": "keyint=infinite:scenecut=0:repeat-headers=1:bframes=0:threads=1",
        }
        log.info("encoding H.264 %dx%d for the recording", width, height)
        return ctx

    def _emit(self, packets: list[Any], arrived: float) -> None:
        for out in packets:
            packet = av.Packet(bytes(out))
            packet.pts = out.pts
            packet.time_base = VIDEO_TB
            packet.is_keyframe = bool(out.is_keyframe)
            self.stats.frames_out += 1
            try:
                self._loop.call_soon_threadsafe(self._sink, packet, arrived)
            except RuntimeError:  # the loop closed: nothing to record into
                return
