"""A simulcast publisher for the tests: one aiortc peer sending several H.264 layers on one
m-section, each layer its own SSRC named by the rtp-stream-id header extension (RFC 8852).

aiortc cannot offer simulcast, so the offer of a plain aiortc peer (one video
section, its own sender idle) is rewritten as a browser writes it (``a=rid``,
``a=simulcast:send``, the two rid extmaps, no ``a=ssrc``), and the layers' RTP
is written here and sent through the peer's DTLS transport (SRTP). Each layer
replays an ``EncodedClip`` at 30 fps, honours PLIs sent to its SSRC (the next
frame is its clip's keyframe) and counts them.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.rtp import RTCP_PSFB_PLI, HeaderExtensionsMap, RtcpPsfbPacket, RtpPacket

from media.forwarder import abs_send_time
from media.packetise import make_packetiser
from media.peers import MediaPeerConnection, PeerConfig, codec_preferences, create_peer_connection
from media.simulcast import URI_REPAIRED_RID, URI_RID
from tests.media.sources import EncodedClip, EncodedTrack

RID_EXT, REPAIRED_EXT, TRANSPORT_CC_EXT = 10, 11, 12
URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


@dataclass(eq=False)
class Layer:
    """One simulcast layer: its rid, clip, SSRC and what happened to it."""

    rid: str
    clip: EncodedClip
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    plis: int = 0
    sent: int = 0
    silent: bool = False
    """Send nothing (a publisher's outage) while set."""
    _offset: int = 0
    _keyframe_wanted: bool = False
    _seq: int = field(default_factory=lambda: random.randrange(1 << 16))
    _ts0: int = field(default_factory=lambda: random.getrandbits(32))

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        """The transport routes RTCP naming this SSRC here (as to an ``RTCRtpSender``)."""
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            self.plis += 1
            self._keyframe_wanted = True

    @property
    def _ssrc(self) -> int:
        return self.ssrc


def simulcast_offer(offer_sdp: str, rids: list[str], *, transport_cc: bool = False) -> str:
    """An aiortc offer rewritten as a simulcast offer of ``rids`` in its video section
    (with ``transport_cc``, also offering transport-wide feedback there, as browsers do)."""
    out: list[str] = []
    video = False
    for line in offer_sdp.splitlines():
        if line.startswith("m="):
            video = line.startswith("m=video")
        if video and line.startswith(("a=ssrc:", "a=ssrc-group:")):
            continue
        out.append(line)
        if video and line.startswith("a=mid:"):
            out += [f"a=extmap:{RID_EXT} {URI_RID}", f"a=extmap:{REPAIRED_EXT} {URI_REPAIRED_RID}"]
            out += [f"a=rid:{rid} send" for rid in rids]
            out.append(f"a=simulcast:send {';'.join(rids)}")
            if transport_cc:
                out.append(f"a=extmap:{TRANSPORT_CC_EXT} {URI_TRANSPORT_CC}")
        if video and transport_cc and line.startswith("a=rtpmap:") and "rtx" not in line:
            out.append(f"a=rtcp-fb:{line[9:].split()[0]} transport-cc")
    return "\r\n".join(out) + "\r\n"


class SimulcastPublisher:
    """Publishes ``layers`` (and optionally audio) as one simulcast video section."""

    def __init__(
        self,
        layers: list[Layer],
        audio: EncodedClip | None = None,
        config: PeerConfig | None = None,
        *,
        transport_cc: bool = False,
    ) -> None:
        self.layers = layers
        self.transport_cc = transport_cc
        #: Transport-wide sequence numbers sent (when the answer negotiated them) and the
        #: transport-cc feedback packets received, as they came (RTPFB FMT 15).
        self.transport_seq = 0
        self.feedback: list[bytes] = []
        self.pc: MediaPeerConnection = create_peer_connection(config)
        self._connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._state)
        self._task: asyncio.Task[None] | None = None
        self._pack = make_packetiser("video/H264")
        if audio is not None:
            self.pc.addTransceiver(EncodedTrack(audio), direction="sendonly")
        self.video = self.pc.addTransceiver("video", direction="sendonly")
        self.video.setCodecPreferences(codec_preferences("video", "video/H264"))

    def _state(self) -> None:
        if self.pc.connectionState == "connected":
            self._connected.set()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        rids = [x.rid for x in self.layers]
        return simulcast_offer(
            str(self.pc.localDescription.sdp), rids, transport_cc=self.transport_cc
        )

    async def accept(self, answer_sdp: str) -> None:
        """Apply the answer and start sending every layer once connected."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        answer = aiortc_sdp.SessionDescription.parse(answer_sdp)
        media = next(m for m in answer.media if m.kind == "video")
        self._pt = int(media.rtp.codecs[0].payloadType or 0)
        self._mid = media.rtp.muxId
        extensions = list(media.rtp.headerExtensions)
        self.answered_rid = any(x.uri == URI_RID for x in extensions)
        self.answered_transport_cc = any(x.uri == URI_TRANSPORT_CC for x in extensions)
        self._map = HeaderExtensionsMap()
        self._map.configure(RTCRtpParameters(headerExtensions=extensions))
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        dtls = self.video.sender.transport
        await self._connected.wait()
        for layer in self.layers:
            dtls._rtp_router.register_sender(layer, layer.ssrc)
        handle_rtcp = dtls._handle_rtcp_data

        async def keep_feedback(data: bytes) -> None:
            if len(data) >= 4 and data[1] == 205 and data[0] & 0x1F == 15:
                self.feedback.append(bytes(data))
            await handle_rtcp(data)

        dtls._handle_rtcp_data = keep_feedback
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while True:
            for layer in self.layers:
                await self._send_frame(dtls, layer, n)
            n += 1
            await asyncio.sleep(max(0.0, start + n / 30 - loop.time()))

    async def _send_frame(self, dtls: Any, layer: Layer, n: int) -> None:
        if layer.silent:
            return
        frames = layer.clip.frames
        if layer._keyframe_wanted:
            layer._keyframe_wanted = False
            layer._offset = -n % len(frames)
        data, keyframe = frames[(n + layer._offset) % len(frames)]
        packet = av.Packet(data)
        packet.pts = n * 3000
        packet.time_base = layer.clip.time_base
        packet.is_keyframe = keyframe
        payloads, _ = self._pack(packet, n)
        timestamp = (layer._ts0 + n * 3000) & 0xFFFFFFFF
        now = asyncio.get_running_loop().time()
        for i, payload in enumerate(payloads):
            rtp = RtpPacket(
                payload_type=self._pt, sequence_number=layer._seq, timestamp=timestamp,
                ssrc=layer.ssrc, marker=int(i == len(payloads) - 1), payload=payload,
            )  # fmt: skip
            rtp.extensions.mid = self._mid
            rtp.extensions.rtp_stream_id = layer.rid
            rtp.extensions.abs_send_time = abs_send_time(now)
            if self.answered_transport_cc:
                rtp.extensions.transport_sequence_number = self.transport_seq & 0xFFFF
                self.transport_seq += 1
            layer._seq = (layer._seq + 1) & 0xFFFF
            try:
                await dtls._send_rtp(rtp.serialize(self._map))
            except ConnectionError:
                return
        layer.sent += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.pc.close()
