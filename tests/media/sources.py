"""Synthetic encoded media for the media tests: encoded once, replayed at real-time pace.

The publisher side of a test may encode (here, once per session); the relay
under test must not. ``EncodedTrack`` replays a clip in a loop with monotonic
pts, as a camera would, and ``Viewer`` is a plain aiortc peer that decodes
what it receives and counts it.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import av
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from media.peers import MediaPeerConnection, PeerConfig, codec_preferences, create_peer_connection

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
OPUS_TIME_BASE = fractions.Fraction(1, 48000)


@dataclass(frozen=True)
class EncodedClip:
    """Encoded frames ``(data, keyframe)`` of one codec, ``step`` pts apart."""

    kind: str
    codec: str
    frames: list[tuple[bytes, bool]]
    time_base: fractions.Fraction
    step: int
    interval: float


def encode_video_clip(
    codec: str,
    *,
    frames: int = 150,
    gop: int = 150,
    size: tuple[int, int] = (320, 240),
    bit_rate: int = 500_000,
) -> EncodedClip:
    """``frames`` frames of ffmpeg's moving test pattern, one keyframe every ``gop``."""
    name = {"video/H264": "libx264", "video/VP8": "libvpx"}[codec]
    ctx: Any = av.CodecContext.create(name, "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.framerate = fractions.Fraction(30, 1)
    ctx.gop_size = gop
    ctx.bit_rate = bit_rate
    if name == "libx264":
        ctx.profile = "Baseline"
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
        }
    else:
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    source = av.open(f"testsrc=size={size[0]}x{size[1]}:rate=30", format="lavfi")
    out: list[tuple[bytes, bool]] = []
    try:
        for i, frame in enumerate(source.decode(video=0)):
            if i >= frames:
                break
            yuv = frame.reformat(format="yuv420p")
            yuv.pts = i
            yuv.time_base = ctx.time_base
            yuv.pict_type = av.video.frame.PictureType.NONE  # lavfi marks every frame I
            out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(yuv)]
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    finally:
        source.close()
    return EncodedClip("video", codec, out, VIDEO_TIME_BASE, 3000, 1 / 30)


def encode_opus_clip(seconds: float = 5.0) -> EncodedClip:
    """A 440 Hz tone as 20 ms Opus frames."""
    ctx: Any = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.bit_rate = 64000
    ctx.time_base = OPUS_TIME_BASE
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=960)
    source = av.open("sine=frequency=440:sample_rate=48000", format="lavfi")
    out: list[tuple[bytes, bool]] = []
    try:
        for frame in source.decode(audio=0):
            for chunk in resampler.resample(frame):
                out += [(bytes(p), True) for p in ctx.encode(chunk)]
            if len(out) >= seconds * 50:
                break
    finally:
        source.close()
    return EncodedClip("audio", "audio/opus", out, OPUS_TIME_BASE, 960, 0.02)


class EncodedTrack(MediaStreamTrack):
    """Replays an ``EncodedClip`` forever at its frame rate, pts always increasing.

    Like a live encoder it honours keyframe requests: after
    ``request_keyframe()`` the next frame is the clip's first (a keyframe).
    """

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self.sent = 0
        self.keyframe_requests = 0
        self._offset = 0
        self._keyframe_wanted = False
        self._start: float | None = None

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> EncodedPacket:
        if self.readyState != "live":
            raise MediaStreamError
        n = self.sent
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            await asyncio.sleep(max(0.0, self._start + n * self.clip.interval - loop.time()))
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            self._offset = -n % len(self.clip.frames)
        data, keyframe = self.clip.frames[(n + self._offset) % len(self.clip.frames)]
        packet = av.Packet(data)
        packet.pts = n * self.clip.step
        packet.time_base = self.clip.time_base
        packet.is_keyframe = keyframe
        self.sent += 1
        return packet


async def publisher_offer(
    clips: list[EncodedClip], config: PeerConfig | None = None
) -> tuple[MediaPeerConnection, str]:
    """A sending peer for ``clips`` (one transceiver each); returns it and its offer."""
    pc = create_peer_connection(config)
    for clip in clips:
        track = EncodedTrack(clip)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences(clip.kind, clip.codec))
        # A PLI only sets a flag aiortc's encode branch reads; route it to the clip.
        transceiver.sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
    await pc.setLocalDescription(await pc.createOffer())
    return pc, str(pc.localDescription.sdp)


@dataclass
class Received:
    """What a viewer decoded of one track."""

    frames: int = 0
    first_at: float | None = None
    arrivals: list[float] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)


class Viewer:
    """A receive-only aiortc peer (stock decoding receivers) that counts decoded frames."""

    def __init__(self, kinds: tuple[str, ...] = ("video",), config: PeerConfig | None = None):
        self.pc = create_peer_connection(config)
        self.kinds = kinds
        self.received: dict[str, Received] = {k: Received() for k in kinds}
        self._tasks: list[asyncio.Task[None]] = []
        for kind in kinds:
            self.pc.addTransceiver(kind, direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        stats = self.received[track.kind]
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if stats.first_at is None:
                    stats.first_at = now
                stats.frames += 1
                stats.arrivals.append(now)
                if isinstance(frame, av.VideoFrame):
                    stats.sizes.add((frame.width, frame.height))
        except MediaStreamError:
            pass

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def trickled(offer_sdp: str) -> tuple[str, str]:
    """``offer_sdp`` without its candidates (as a trickle ICE client sends it first), and
    the ``application/trickle-ice-sdpfrag`` that trickles them with end-of-candidates
    (RFC 8840 §4.4: the first m= section's ufrag, pwd and mid, max-bundle)."""
    lines = offer_sdp.splitlines()
    kept = [x for x in lines if not x.startswith(("a=candidate:", "a=end-of-candidates"))]
    first = next(i for i, x in enumerate(lines) if x.startswith("m="))
    section = lines[first:]
    rest = [i for i, x in enumerate(section[1:], 1) if x.startswith("m=")]
    section = section[: rest[0]] if rest else section
    wanted = ("a=ice-ufrag:", "a=ice-pwd:", "a=mid:", "a=candidate:")
    frag = [lines[first]] + [x for x in section if x.startswith(wanted)] + ["a=end-of-candidates"]
    return "\r\n".join(kept) + "\r\n", "\r\n".join(frag) + "\r\n"


def blackhole(pc: MediaPeerConnection) -> None:
    """Make ``pc`` vanish from the network without a word (a phone out of coverage):
    its ICE sockets neither send nor receive anything from now on; no DTLS close."""
    from media.aiortc_seams import ice as ice_seams

    for gatherer in pc._ice_gatherers():
        for protocol in ice_seams.stun_protocols(ice_seams.ice_connection(gatherer)):
            protocol.transport.sendto = lambda *args, **kwargs: None  # type: ignore[method-assign]
            protocol.datagram_received = lambda *args, **kwargs: None  # type: ignore[method-assign]
