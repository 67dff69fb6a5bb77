"""The receiver and sender seams, exercised through aiortc's own code paths."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
import pytest
from aiortc import RTCRtpReceiver, RTCSessionDescription
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from media.bitstream import h264_nal_units
from media.passthrough import (
    PassthroughDecoder,
    dropped_frames,
    enable_passthrough,
    install_sender_hooks,
    is_passthrough,
    request_keyframe,
)
from media.peers import MediaPeerConnection, create_peer_connection
from media.relay import Relay, SharedPacker
from tests.media.sources import EncodedClip, publisher_offer

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
SSRC = 0x1234
H264_TIME_BASE = fractions.Fraction(1, 90000)


def nal_units(data: bytes) -> list[bytes]:
    return [data[s:e] for _, s, e in h264_nal_units(data)]


def test_decoder_returns_the_encoded_h264_frame(h264_clip: EncodedClip) -> None:
    """An H.264 frame comes back as a packet: same NAL units, pts, 90 kHz, keyframe flag."""
    decoder = PassthroughDecoder(H264)
    for n, (data, key) in enumerate(h264_clip.frames[:3]):
        [packet] = decoder.decode(JitterFrame(data=data, timestamp=n * 3000))
        assert nal_units(bytes(packet)) == nal_units(data)
        assert packet.pts == n * 3000 and packet.time_base == H264_TIME_BASE
        assert packet.is_keyframe == key


def test_decoder_flags_vp8_and_opus_keyframes(vp8_clip: EncodedClip) -> None:
    """VP8 key frames are flagged from the bitstream; every Opus frame is a start point."""
    vp8 = PassthroughDecoder(VP8)
    flags = [vp8.decode(JitterFrame(d, 0))[0].is_keyframe for d, _ in vp8_clip.frames[:3]]
    assert flags == [True, False, False]
    [opus] = PassthroughDecoder(OPUS).decode(JitterFrame(b"\xfc\x00", 960))
    assert opus.is_keyframe and opus.pts == 960 and opus.time_base.denominator == 48000


@dataclass
class Rig:
    """A receiver negotiated against a real offer, started, fed RTP by hand."""

    pc: MediaPeerConnection
    publisher: MediaPeerConnection
    receiver: RTCRtpReceiver
    rtcp: list[object]
    seq: int = 0

    async def feed(self, packets: list[EncodedPacket], codec: RTCRtpCodecParameters) -> None:
        packer = H264Encoder() if codec.name == "H264" else Vp8Encoder()
        for packet in packets:
            payloads, timestamp = packer.pack(packet)
            for i, payload in enumerate(payloads):
                rtp = RtpPacket(
                    payload_type=codec.payloadType or 0,
                    marker=int(i == len(payloads) - 1),
                    sequence_number=self.seq,
                    timestamp=timestamp,
                    ssrc=SSRC,
                    payload=payload,
                )
                self.seq += 1
                await self.receiver._handle_rtp_packet(rtp, arrival_time_ms=0)


@contextlib.asynccontextmanager
async def rig(clip: EncodedClip, **kw: int) -> AsyncIterator[Rig]:
    publisher, offer = await publisher_offer([clip])
    pc = create_peer_connection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    receiver = pc.getTransceivers()[0].receiver
    enable_passthrough(receiver, **kw)
    enable_passthrough(receiver, **kw)  # twice is harmless
    rtcp: list[object] = []

    async def capture(packet: object) -> None:
        rtcp.append(packet)

    receiver._send_rtcp = capture  # type: ignore[method-assign]
    codec = H264 if clip.codec == "video/H264" else VP8
    params = RTCRtpReceiveParameters(
        codecs=[codec],
        encodings=[RTCRtpDecodingParameters(ssrc=SSRC, payloadType=codec.payloadType or 0)],
    )
    await receiver.receive(params)
    try:
        yield Rig(pc, publisher, receiver, rtcp)
    finally:
        await pc.close()
        await publisher.close()


def clip_packets(clip: EncodedClip, count: int) -> list[EncodedPacket]:
    out = []
    for n in range(count):
        data, key = clip.frames[n % len(clip.frames)]
        packet = av.Packet(data)
        packet.pts, packet.time_base, packet.is_keyframe = n * clip.step, clip.time_base, key
        out.append(packet)
    return out


async def test_receiver_track_yields_encoded_frames(h264_clip: EncodedClip) -> None:
    """RTP through aiortc's real receive path comes out of the track as encoded packets."""
    async with rig(h264_clip) as r:
        assert is_passthrough(r.receiver)
        await r.feed(clip_packets(h264_clip, 6), H264)
        track = r.receiver.track
        got = [await asyncio.wait_for(track.recv(), 1) for _ in range(5)]
        packets = [p for p in got if isinstance(p, av.Packet)]
        assert len(packets) == 5  # encoded packets, not decoded frames
        for n, packet in enumerate(packets):
            assert nal_units(bytes(packet)) == nal_units(h264_clip.frames[n][0])
            assert packet.pts == n * 3000
        assert [p.is_keyframe for p in packets] == [True, False, False, False, False]
        await r.receiver.stop()
        with pytest.raises(MediaStreamError):
            while True:
                await asyncio.wait_for(track.recv(), 1)


async def test_unread_track_is_bounded_and_asks_for_a_keyframe(h264_clip: EncodedClip) -> None:
    """Past max_backlog unread frames, new ones are dropped to the next keyframe, with a PLI."""
    async with rig(h264_clip, max_backlog=10) as r:
        await r.feed(clip_packets(h264_clip, 64), H264)
        track = r.receiver.track
        assert track._queue.qsize() == 10  # type: ignore[attr-defined]
        assert dropped_frames(r.receiver) == 64 - 10  # every frame completes at its marker
        plis = [p for p in r.rtcp if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_PLI]
        assert [p.media_ssrc for p in plis] == [SSRC]
        for _ in range(10):
            await track.recv()
        await r.feed(clip_packets(h264_clip, 64)[60:63], H264)
        resumed = await asyncio.wait_for(track.recv(), 1)
        assert isinstance(resumed, av.Packet) and resumed.is_keyframe


async def test_request_keyframe_sends_a_pli_upstream(vp8_clip: EncodedClip) -> None:
    """request_keyframe makes the receiver send a PLI to the media SSRC with the next packet."""
    async with rig(vp8_clip) as r:
        request_keyframe(r.receiver)
        await r.feed(clip_packets(vp8_clip, 1), VP8)
        plis = [p for p in r.rtcp if isinstance(p, RtcpPsfbPacket) and p.fmt == RTCP_PSFB_PLI]
        assert [p.media_ssrc for p in plis] == [SSRC]


async def test_sender_hooks_route_viewer_pli_and_packing(h264_clip: EncodedClip) -> None:
    """A viewer's PLI reaches the callback through aiortc's RTCP handler; pack is shared."""
    relay = Relay("video", "video/H264")
    track = relay.subscribe()
    pc = create_peer_connection()
    transceiver = pc.addTransceiver(track, direction="sendonly")
    calls: list[str] = []
    packer = SharedPacker(track)
    install_sender_hooks(
        transceiver.sender, encoder=packer, on_keyframe_request=lambda: calls.append("pli")
    )
    sender = transceiver.sender
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
    await sender._handle_rtcp_packet(pli)
    assert calls == ["pli"]
    assert sender._RTCRtpSender__encoder is packer  # type: ignore[attr-defined]
    await pc.close()


async def test_hooks_refuse_a_started_receiver(h264_clip: EncodedClip) -> None:
    """Installing pass-through after the receiver started is an error, not a silent no-op."""
    async with rig(h264_clip) as r:
        other = r.pc.addTransceiver("video", direction="recvonly").receiver
        other._RTCRtpReceiver__started = True  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            enable_passthrough(other)
        other._RTCRtpReceiver__started = False  # type: ignore[attr-defined]


def _rtp(seq: int, ts: int, marker: bool, data: bytes) -> Any:
    from aiortc.rtp import RtpPacket

    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=marker)
    packet._data = data  # type: ignore[attr-defined]  # what the receiver depayloaded
    return packet


def test_marker_completes_a_frame_at_once() -> None:
    """A frame is handed on at its marker bit, not when the next frame starts."""
    from media.passthrough import MarkerJitterBuffer

    buffer = MarkerJitterBuffer(capacity=64, is_video=True)
    assert buffer.add(_rtp(10, 3000, False, b"a"))[1] is None
    frame = buffer.add(_rtp(11, 3000, True, b"b"))[1]
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000


def test_a_missing_packet_holds_the_frame() -> None:
    """With a hole before the marker, the frame waits for the retransmission."""
    from media.passthrough import MarkerJitterBuffer

    buffer = MarkerJitterBuffer(capacity=64, is_video=True)
    buffer.add(_rtp(20, 6000, False, b"x"))
    assert buffer.add(_rtp(22, 6000, True, b"z"))[1] is None
    frame = buffer.add(_rtp(21, 6000, False, b"y"))[1]
    assert frame is not None and frame.data == b"xyz"


def test_a_frame_without_marker_ends_at_the_next_timestamp() -> None:
    """Senders that never set the marker still get their frames (one frame later)."""
    from media.passthrough import MarkerJitterBuffer

    buffer = MarkerJitterBuffer(capacity=64, is_video=True)
    buffer.add(_rtp(30, 9000, False, b"p"))
    frame = buffer.add(_rtp(31, 12000, False, b"q"))[1]
    assert frame is not None and frame.data == b"p"


def test_rtx_history_covers_a_second() -> None:
    """Senders keep at least ~1 s of packets for NACK/RTX (170 packets/s at 1.5 Mbit/s)."""
    import aiortc.rtcrtpsender

    from media.passthrough import RTX_HISTORY_PACKETS

    assert aiortc.rtcrtpsender.RTP_HISTORY_SIZE >= RTX_HISTORY_PACKETS >= 256
    assert 65536 % aiortc.rtcrtpsender.RTP_HISTORY_SIZE == 0


def test_audio_packets_are_passed_on_at_once() -> None:
    """Each Opus packet is a frame: no 4-frame prefetch; duplicates and late ones dropped."""
    from media.passthrough import ImmediateAudioBuffer

    buffer = ImmediateAudioBuffer()
    frames = [
        buffer.add(_rtp(seq, 960 * seq, True, bytes([seq % 256])))[1] for seq in (65534, 65535, 0)
    ]
    assert [f.data if f else None for f in frames] == [b"\xfe", b"\xff", b"\x00"]  # across the wrap
    assert buffer.add(_rtp(0, 0, True, b"again"))[1] is None  # duplicate
    assert buffer.add(_rtp(65535, 0, True, b"late"))[1] is None  # older than the newest
    later = buffer.add(_rtp(3, 2880, True, b"gap"))[1]  # a gap does not hold it back
    assert later is not None and later.data == b"gap" and later.timestamp == 2880


def _frames(
    buffer: Any, first_seq: int, first_ts: int, count: int, per_frame: int = 3
) -> list[Any]:
    """Feed ``count`` 30 fps frames of ``per_frame`` packets (the last one marked);
    the frames the buffer handed on."""
    out = []
    for f in range(count):
        for p in range(per_frame):
            seq = (first_seq + f * per_frame + p) & 0xFFFF
            ts = (first_ts + f * 3000) & 0xFFFFFFFF
            frame = buffer.add(_rtp(seq, ts, p == per_frame - 1, bytes([p])))[1]
            if frame is not None:
                out.append(frame)
    return out


def test_a_hole_left_by_an_outage_is_not_waited_for() -> None:
    """300 packets lost into an outage (timestamps 15 s on): frames flow again at the
    first frame boundary behind the hole, flagged after_loss; aiortc's own buffer
    hands on nothing until 512 packets have arrived behind the hole."""
    from aiortc.jitterbuffer import JitterBuffer

    from media.passthrough import MarkerJitterBuffer

    ours, stock = MarkerJitterBuffer(capacity=512), JitterBuffer(capacity=512, is_video=True)
    for buffer in (ours, stock):
        assert len(_frames(buffer, 1000, 0, 10)) >= 9
        buffer.add(_rtp(1030, 30_000, False, b"cut"))  # the outage starts mid-frame:
    # packets 1031..1330 never arrive; 15 s later the stream goes on.
    after = _frames(ours, 1331, 30_000 + 15 * 90_000, 3)
    assert [f.after_loss for f in after] == [True, False], "the frame cut by the hole is dropped"
    assert ours.holes_skipped == 1
    fed = 0
    while not _frames(stock, 1331 + fed, 30_000 + 15 * 90_000 + fed * 1000, 1):
        fed += 3
        assert fed < 1000
    assert fed >= 512 - 300 - 3, f"aiortc's buffer sat on the hole for {fed} packets"


def test_a_lost_packet_is_waited_for_then_given_up() -> None:
    """A packet lost in a running stream is waited for (NACK may bring it) for half a
    second of media behind it; then the frames go on without it."""
    from media.passthrough import MAX_HOLE_S, MarkerJitterBuffer

    buffer = MarkerJitterBuffer(capacity=512)
    _frames(buffer, 0, 0, 5)
    buffer.add(_rtp(15, 15_000, False, b"a"))  # frame 5: packet 16 lost
    buffer.add(_rtp(17, 15_000, True, b"c"))
    behind = int(MAX_HOLE_S * 30)  # frames within the wait
    assert _frames(buffer, 18, 18_000, behind - 1) == []
    out = _frames(buffer, 18 + (behind - 1) * 3, 18_000 + (behind - 1) * 3000, 3)
    assert out and out[0].after_loss and not out[-1].after_loss
    late = buffer.add(_rtp(16, 15_000, False, b"b"))[1]  # the retransmission, too late
    assert late is None


def test_old_packets_resent_as_padding_are_dropped_without_a_reset() -> None:
    """A browser with a high estimate pads with old packets resent on RTX (payload
    padding: ~140/s on its lowest layer, up to ~100 packets old on loopback); one more
    than 100 behind must not reset the buffer (a hole, frames skipped to the next
    keyframe, a PLI), only be dropped. Far behind (a new SSRC's numbers) still resets."""
    from media.passthrough import MAX_LATE, MarkerJitterBuffer

    buffer = MarkerJitterBuffer(capacity=512)
    assert len(_frames(buffer, 1000, 90_000, 100)) == 100  # up to seq 1299
    for old in (1300 - 150, 1300 - 400, 1300 - MAX_LATE + 1):  # the origin is 1300
        assert buffer.add(_rtp(old & 0xFFFF, 0, False, b"old")) == (False, None)
    out = _frames(buffer, 1300, 90_000 + 100 * 3000, 5)
    assert len(out) == 5 and not any(f.after_loss for f in out)
    assert buffer.late == 3
    restart = buffer.add(_rtp(1315 - MAX_LATE - 10, 0, False, b"restart"))  # far behind
    assert buffer.late == 3 and restart == (True, None)  # started again (and a PLI)
