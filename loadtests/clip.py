"""The media run's publisher: a synthetic H.264 clip, encoded once, WHIP-published live.

Frame ``n`` carries its number in the spacing of its pts (``frame_pts``) so
that viewers' frames can be mapped back to it (``loadtests.framemap``).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import re
import time
from dataclasses import dataclass
from typing import Any

import av
import httpx
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from loadtests.whep import LOOPBACK_CONFIG, whep_post
from media.aiortc_seams import sender as sender_seams
from media.peers import codec_preferences, create_peer_connection

VIDEO_CLOCK = 90000
CODE_SPAN = 250
"""K: odd frames carry ``1 + (n // 2) mod K`` extra ticks (see the module doc)."""


@dataclass(frozen=True)
class Clip:
    frames: list[tuple[bytes, bool]]
    fps: int
    width: int
    height: int

    @property
    def bitrate(self) -> float:
        return 8 * sum(len(d) for d, _ in self.frames) * self.fps / len(self.frames)


def encode_clip(
    width: int, height: int, fps: int, bitrate: int, seconds: float, gop_s: float,
    source_file: str | None = None, codec: str = "h264",
) -> Clip:  # fmt: skip
    """ffmpeg's moving test pattern (or the first ``seconds`` of ``source_file``, scaled),
    H.264 constrained baseline, Annex-B (or ``codec="vp8"``: VP8, as a phone without
    H.264 sends), encoded once."""
    gop = max(1, round(gop_s * fps))
    if codec == "vp8":
        return _encode(_vp8_encoder(width, height, fps, bitrate, gop), width, height, fps,
                       seconds, gop, source_file)  # fmt: skip
    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.bit_rate = bitrate
    ctx.profile = "Baseline"
    kbps = max(1, bitrate // 1000)
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1:"
        f"vbv-maxrate={kbps}:vbv-bufsize={kbps}",
    }
    return _encode(ctx, width, height, fps, seconds, gop, source_file)


def _vp8_encoder(width: int, height: int, fps: int, bitrate: int, gop: int) -> Any:
    ctx: Any = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.bit_rate = bitrate
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return ctx


def _encode(
    ctx: Any, width: int, height: int, fps: int, seconds: float, gop: int,
    source_file: str | None,
) -> Clip:  # fmt: skip
    count = max(gop, round(seconds * fps))
    source = (av.open(source_file) if source_file else
              av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi"))  # fmt: skip
    out: list[tuple[bytes, bool]] = []
    try:
        for i, frame in enumerate(source.decode(video=0)):
            if i >= count:
                break
            yuv = frame.reformat(width=width, height=height, format="yuv420p")
            yuv.pts = i
            yuv.time_base = ctx.time_base
            yuv.pict_type = av.video.frame.PictureType.NONE
            out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(yuv)]
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    finally:
        source.close()
    if not out or not out[0][1]:
        raise RuntimeError("the encoded clip does not start with a keyframe")
    return Clip(out, fps, width, height)


def frame_pts(n: int, step: int) -> int:
    """The pts (90 kHz) of frame ``n``: ``n·step``, plus the frame-number code on odd frames."""
    return n * step + (1 + (n // 2) % CODE_SPAN if n % 2 else 0)


class ClipTrack(MediaStreamTrack):
    """Replays a ``Clip`` forever at its frame rate; frame ``n`` has pts ``frame_pts(n)``.

    ``sent_at[n]`` is when frame ``n`` was handed to the sender
    (``time.monotonic()``). A keyframe request restarts the clip (its first
    frame is a keyframe), as a live encoder would send an IDR.
    """

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.kind = "video"
        self.clip = clip
        self.step = VIDEO_CLOCK // clip.fps
        self.sent_at: list[float] = []
        self.keyframe_requests = 0
        self._index = 0
        self._start: float | None = None

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._index = 0

    async def recv(self) -> av.Packet:  # type: ignore[type-arg]
        if self.readyState != "live":
            raise MediaStreamError
        n = len(self.sent_at)
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self._start + n / self.clip.fps - time.monotonic()))
        data, keyframe = self.clip.frames[self._index % len(self.clip.frames)]
        self._index += 1
        packet = av.Packet(data)
        packet.pts = frame_pts(n, self.step)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        packet.is_keyframe = keyframe
        self.sent_at.append(time.monotonic())
        return packet


@dataclass
class Publisher:
    pc: Any
    track: ClipTrack
    session_url: str


async def publish(
    client: httpx.AsyncClient, base: str, room: str, token: str, clip: Clip
) -> Publisher:
    """WHIP-publish ``clip``; returns once the connection is up and frames flow."""
    pc = create_peer_connection(LOOPBACK_CONFIG)
    track = ClipTrack(clip)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(codec_preferences("video", "video/H264"))
    # aiortc's PLI/FIR handling only sets a flag its encode branch reads; send
    # pre-encoded keyframes instead (the same hook as tests/media/sources.py).
    sender_seams.route_keyframe_requests(transceiver.sender, track.request_keyframe)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer, session_url = await whep_post(
            client, f"{base}/whip/{room}", token, str(pc.localDescription.sdp),
            time.monotonic() + 30,
        )  # fmt: skip
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        deadline = time.monotonic() + 20
        while len(track.sent_at) < clip.fps:  # a second of frames: a GOP start is cached
            if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                raise RuntimeError(f"publisher connection {pc.connectionState}, no media")
            await asyncio.sleep(0.05)
    except BaseException:
        await pc.close()
        raise
    return Publisher(pc, track, session_url)


def parse_bitrate(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"bad bitrate {text!r} (e.g. 1.5M, 800k)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
    return round(float(match[1]) * scale)


def parse_resolution(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or int(match[1]) % 2 or int(match[2]) % 2:
        raise argparse.ArgumentTypeError(f"bad resolution {text!r} (e.g. 1280x720, even sizes)")
    return int(match[1]), int(match[2])
