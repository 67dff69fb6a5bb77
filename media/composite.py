"""A KOC's co-stream drawn into the host's picture, for the recording only.

Viewers of a co-stream get both videos as sent (two tracks, forwarded, never
decoded). HLS, the replay and the clips have one picture, so while a KOC
co-streams the room's recording is a picture-in-picture of the two: the
host's picture at its own size, the KOC's in the top-right corner
(``PipLayout``: 30 % of the width, the KOC's aspect kept). Picture-in-picture
rather than side by side: the host's frame (the product on the table) keeps
its size and place in every clip, the recording's size does not change when
a co-stream starts or ends (players switch init segments, not layouts), and a
portrait phone picture next to another would be half-width each.

It is the one place a composite is worth its encode: one decode of each
stream and one encode per room, only while the co-stream lasts, on the
composer's own thread (``put_host`` / ``put_guest`` are O(1) on the loop,
one bounded queue; full → that input drops to its next key frame and asks
for one). The output is what ``media.transcode.H264Out`` makes: constrained
baseline, an IDR with SPS/PPS first and every segment length, the host
stream's own timestamps (so the recording's timeline runs on through the
switch), each frame given back on the loop with its host frame's arrival.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av

from media.transcode import H264Out, Sink, TranscodeConfig, TranscodeStats

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

log = logging.getLogger("livecore.composite")

_END = object()
HOST, GUEST = "host", "guest"
_DECODERS = {"video/h264": "h264", "video/vp8": "vp8"}


@dataclass(frozen=True, slots=True)
class PipLayout:
    width: float = 0.3
    """The inset's width as a fraction of the host picture's."""
    margin: float = 0.03
    """Space from the top and right edges, as a fraction of the host picture's width."""


def inset_rect(
    host: tuple[int, int], guest: tuple[int, int], layout: PipLayout
) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the KOC's picture in the host's, all even. Pure."""
    hw, hh = host
    gw, gh = guest
    w = max(2, int(hw * layout.width) & ~1)
    h = max(2, min(hh - 2, round(w * gh / max(1, gw))) & ~1)
    margin = int(hw * layout.margin) & ~1
    return max(0, hw - w - margin) & ~1, margin, w, h


def overlay(base: Any, inset: Any, x: int, y: int) -> None:
    """Copy the yuv420p picture ``inset`` into ``base`` at (``x``, ``y``), row by row
    (both even: the chroma planes are half size)."""
    for index, (dx, dy) in enumerate(((x, y), (x // 2, y // 2), (x // 2, y // 2))):
        src, dst = inset.planes[index], base.planes[index]
        s, d = memoryview(src), memoryview(dst)
        width = src.width
        for row in range(src.height):
            at = (dy + row) * dst.line_size + dx
            d[at : at + width] = s[row * src.line_size : row * src.line_size + width]


def fresh_copy(frame: Any) -> Any:
    """A yuv420p picture of its own with ``frame``'s pixels: a decoder's frame may be
    one of its reference pictures, never to be drawn on."""
    copy = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for src, dst in zip(frame.planes, copy.planes, strict=True):
        s, d = memoryview(src), memoryview(dst)
        if src.line_size == dst.line_size:
            d[:] = s[: len(d)]
            continue
        for row in range(src.height):
            d[row * dst.line_size : row * dst.line_size + src.width] = s[
                row * src.line_size : row * src.line_size + src.width
            ]
    return copy


class PipComposer:
    """One co-streaming room's composite for its recording (see the module doc).

    ``put_host``, ``put_guest`` and ``close`` are called from the event loop;
    ``request_keyframe(HOST | GUEST)`` is called on the loop when an input must
    restart on a key frame.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        loop: Any,
        host_codec: str,
        guest_codec: str,
        request_keyframe: Callable[[str], object],
        config: TranscodeConfig | None = None,
        layout: PipLayout | None = None,
        name: str = "composite",
    ) -> None:
        self.config = config or TranscodeConfig()
        self.layout = layout or PipLayout()
        self.stats = TranscodeStats()
        self._codecs = {HOST: _DECODERS[host_codec.lower()], GUEST: _DECODERS[guest_codec.lower()]}
        self._sink, self._loop = sink, loop
        self._request_keyframe = request_keyframe
        self._queue: queue.Queue[Any] = queue.Queue()
        self._skipping = {HOST: True, GUEST: True}  # each input starts on a key frame
        self.closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put_host(self, packet: EncodedPacket) -> None:
        self._put(HOST, packet)

    def put_guest(self, packet: EncodedPacket) -> None:
        self._put(GUEST, packet)

    def _put(self, role: str, packet: EncodedPacket) -> None:
        self.stats.frames_in += 1
        if self.closed or (self._skipping[role] and not packet.is_keyframe):
            self.stats.dropped += 1
            return
        if self._queue.qsize() >= self.config.queue_frames:
            self.stats.dropped += 1
            self._skipping[role] = True
            self._request_keyframe(role)
            return
        self._skipping[role] = False
        self._queue.put((role, packet, time.monotonic()))

    def close(self) -> None:
        """Stop after the queued frames (never waits)."""
        if not self.closed:
            self.closed = True
            self._queue.put(_END)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        decoders: dict[str, Any] = {
            role: av.CodecContext.create(name, "r") for role, name in self._codecs.items()
        }
        out = H264Out(self._sink, self._loop, self.config, self.stats)
        guest: Any = None  # the KOC's latest picture, at the inset's size
        rect: tuple[int, int, int, int] | None = None
        cpu0 = time.thread_time()
        while True:
            item = self._queue.get()
            if item is _END:
                break
            role, packet, arrived = item
            try:
                frames = decoders[role].decode(packet)
            except av.error.FFmpegError as exc:
                self.stats.errors += 1
                log.warning("%s frame not decoded (%s): waiting for a key frame", role, exc)
                self._skipping[role] = True
                self._loop.call_soon_threadsafe(self._request_keyframe, role)
                continue
            for frame in frames:
                if role == GUEST:
                    if out.size != (0, 0):
                        rect = inset_rect(out.size, (frame.width, frame.height), self.layout)
                        guest = frame.reformat(width=rect[2], height=rect[3], format="yuv420p")
                    continue
                out.open(frame.width, frame.height)
                picture = frame.reformat(width=out.size[0], height=out.size[1], format="yuv420p")
                if guest is not None and rect is not None:
                    if picture is frame:  # not scaled: still the decoder's own picture
                        picture = fresh_copy(frame)
                    overlay(picture, guest, rect[0], rect[1])
                out.encode_picture(picture, int(packet.pts), arrived)
            self.stats.cpu_s = time.thread_time() - cpu0
        out.flush()
        self.stats.cpu_s = time.thread_time() - cpu0
