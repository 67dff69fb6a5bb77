"""The lean forward path end to end: real aiortc publisher and viewers over loopback.

Viewers are stock aiortc peers: they depacketise, decode, send receiver
reports, NACKs and PLIs. Loss is induced on purpose by a datagram filter put
under a viewer's ICE socket (every other datagram goes to aioice as usual).
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import time
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from media import metrics, rtpsend
from media.aiortc_seams import ice as ice_seams
from media.aiortc_seams import sender as sender_seams
from media.forwarder import (
    URI_ABS_SEND_TIME,
    URI_MID,
    LeanViewer,
    answered_params,
    extension_block,
)
from media.peers import PeerConfig
from media.sessions import accept_publisher, accept_viewer
from media.udpports import PortRange, PortsExhausted
from tests.media.sources import EncodedClip, Viewer, publisher_offer
from tests.media.test_sessions import Stage, stage, until
from tests.waiting import eventually


class Dropper(asyncio.DatagramProtocol):
    """Drops every ``every``-th video RTP datagram (payload type ``pt``) before aioice sees it."""

    def __init__(self, stun: Any, pt: int, every: int) -> None:
        self.stun, self.pt, self.every = stun, pt, every
        self.seen = self.dropped = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) > 12 and 128 <= data[0] <= 191 and data[1] & 0x7F == self.pt:
            self.seen += 1
            if self.seen % self.every == 0:
                self.dropped += 1
                return
        self.stun.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.stun.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stun.connection_lost(exc)


def viewer_socket_protocol(viewer: Viewer) -> Any:
    dtls = viewer.pc.getTransceivers()[0].receiver.transport
    (stun,) = ice_seams.stun_protocols(ice_seams.ice_connection(dtls.transport.iceGatherer))
    return stun


async def watch_with_loss(st: Stage, every: int) -> tuple[Viewer, Dropper]:
    viewer = Viewer(("video",))
    offer = await viewer.offer()
    answer, session = await accept_viewer(st.session, offer)
    stun = viewer_socket_protocol(viewer)
    dropper = Dropper(stun, answered_params(answer)["video"].pt, every)
    stun.transport.set_protocol(dropper)
    await viewer.accept(answer)
    st.viewers.append((viewer, session))
    return viewer, dropper


async def test_lean_viewer_decodes_audio_and_video_with_sender_reports(
    h264_clip: EncodedClip, opus_clip: EncodedClip
) -> None:
    """Audio and video go through the forwarder; the viewer gets SRs with true counts."""
    async with stage([h264_clip, opus_clip]) as st:
        viewer = await st.watch(("audio", "video"))
        await until(lambda: all(viewer.received[k].frames > 20 for k in ("audio", "video")), 8)
        (_, session) = st.viewers[0]
        lean = {kind: t for kind, t in session.tracks.items() if isinstance(t, LeanViewer)}
        assert set(lean) == {"audio", "video"}
        assert all(t.rtp is not None and t.rtp.packets > 0 for t in lean.values())

        async def reports() -> dict[str, Any]:
            found = {}
            for receiver in viewer.pc.getReceivers():
                for stat in (await receiver.getStats()).values():
                    if stat.type == "remote-outbound-rtp" and stat.packetsSent:
                        found[receiver.track.kind] = stat
            return found

        async def both() -> dict[str, Any] | None:  # sender reports come every 0.5-1.5 s
            found = await reports()
            return found if len(found) == 2 else None

        got = await eventually(both, within=5, step=0.1, what="sender reports of both tracks")
        assert set(got) == {"audio", "video"}
        now = datetime.datetime.now(datetime.UTC)
        for kind, stat in got.items():
            sent = lean[kind].rtp.packets
            assert 0 < stat.packetsSent <= sent, kind
            # The NTP time of the pair is when that frame arrived at the relay: recent.
            assert abs((now - stat.remoteTimestamp).total_seconds()) < 3, kind
            report = sender_seams.sender_report(lean[kind].sender)
            assert report["packets"] <= sent and report["octets"] > 0
        assert metrics.codec_ops.value == 0
        assert rtpsend.IMPLEMENTATION == ("python" if rtpsend.pure_python_wanted() else "c")


async def test_packet_loss_is_repaired_through_nack(h264_clip: EncodedClip) -> None:
    """One video packet in 7 is dropped at the viewer; RTX from the shared history repairs it."""
    async with stage([h264_clip]) as st:
        clean = await st.watch(("video",))
        lossy, dropper = await watch_with_loss(st, every=7)
        await until(lambda: lossy.received["video"].frames > 5, 8)
        start = lossy.received["video"].frames, clean.received["video"].frames, time.monotonic()
        await asyncio.sleep(2.0)  # a measuring window: frame rates over it, not a wait
        elapsed = time.monotonic() - start[2]
        forwarder = st.session.forwarders["video"]
        assert dropper.dropped > 20
        assert forwarder.resent >= dropper.dropped // 2  # repaired (NACK → RTX), most of them
        lossy_fps = (lossy.received["video"].frames - start[0]) / elapsed
        clean_fps = (clean.received["video"].frames - start[1]) / elapsed
        assert lossy_fps >= 0.8 * clean_fps, (lossy_fps, clean_fps)


async def test_viewer_that_stops_reading_recovers_and_harms_no_one(
    h264_clip: EncodedClip,
) -> None:
    """A viewer whose socket goes unread for 1 s loses packets, asks for a keyframe, recovers.

    The others keep their frame rate while it is stalled: the forwarder holds
    no queue for it and its NACK burst is bounded.
    """
    async with stage([h264_clip]) as st:
        others = [await st.watch(("video",)) for _ in range(2)]
        slow = await st.watch(("video",))
        await until(lambda: all(v.received["video"].frames > 5 for v in [*others, slow]), 8)
        relay = st.session.relays["video"]
        transport = viewer_socket_protocol(slow).transport
        # A small receive buffer: what arrives while it does not read is lost.
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        before = [v.received["video"].frames for v in others]
        asked = relay.stats.keyframe_requests
        lean = st.viewers[-1][1].tracks["video"]
        assert isinstance(lean, LeanViewer)
        transport.pause_reading()
        started = time.monotonic()
        await asyncio.sleep(1.0)  # the fault itself: its socket goes unread for 1 s
        transport.resume_reading()
        resumed_at = slow.received["video"].frames
        # half a second of frames at 30 fps; a loaded test machine may take a while
        await until(lambda: slow.received["video"].frames > resumed_at + 15, 15)
        elapsed = time.monotonic() - started
        during = [v.received["video"].frames - b for v, b in zip(others, before, strict=True)]
        assert min(during) >= 0.8 * 30 * elapsed, during
        # It asked for repairs (NACK, bounded per report interval) or a keyframe (PLI).
        assert lean.nacks > 0 or relay.stats.keyframe_requests > asked
        assert st.session.forwarders["video"].resent <= lean.nacks


async def test_late_viewer_starts_from_the_gop_cache(h264_clip: EncodedClip) -> None:
    """A viewer joining mid-GOP gets the cached GOP at once, keyframe first."""
    async with stage([h264_clip]) as st:
        await st.watch(("video",))
        await until(lambda: st.session.relays["video"].stats.frames_in > 40, 5)
        assert st.session.relays["video"].has_keyframe
        joined = time.monotonic()
        late = await st.watch(("video",))
        await until(lambda: late.received["video"].first_at is not None, 3)
        assert (late.received["video"].first_at or 0) - joined < 0.8


async def test_aiortc_forwarder_stays_selectable(h264_clip: EncodedClip) -> None:
    """``forwarder="aiortc"`` serves a viewer with aiortc's own sender, as before."""
    async with stage([h264_clip]) as st:
        viewer = Viewer(("video",))
        answer, session = await accept_viewer(st.session, await viewer.offer(), forwarder="aiortc")
        await viewer.accept(answer)
        st.viewers.append((viewer, session))
        await until(lambda: viewer.received["video"].frames > 10, 8)
        assert not session.lean and "video" not in st.session.forwarders


def free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports that are free now (bound briefly to check)."""
    for base in range(42000, 60000, 97):
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base, base + size - 1
    raise AssertionError("no free port range")


async def test_media_sockets_stay_inside_the_port_range(h264_clip: EncodedClip) -> None:
    """Publisher and viewers bind inside --udp-ports; with the range used up: PortsExhausted."""
    lo, hi = free_range(2)
    config = PeerConfig(udp_ports=PortRange(lo, hi))
    pc, offer = await publisher_offer([h264_clip])
    answer, publisher = await accept_publisher(offer, config=config)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    viewer = Viewer(("video",))
    v_answer, v_session = await accept_viewer(publisher, await viewer.offer(), config=config)
    await viewer.accept(v_answer)
    third = Viewer(("video",))
    try:
        await until(lambda: viewer.received["video"].frames > 3, 8)
        ports = []
        for session in (publisher, v_session):
            dtls = session.pc.getTransceivers()[0].receiver.transport
            ports += ice_seams.local_ports(ice_seams.ice_connection(dtls.transport.iceGatherer))
        assert sorted(ports) == [lo, hi]
        assert all(
            f" {p} typ host" in sdp for p, sdp in zip(ports, [answer, v_answer], strict=True)
        )
        with pytest.raises(PortsExhausted):
            await accept_viewer(publisher, await third.offer(), config=config)
        assert len(publisher.viewers) == 1  # the refused one left nothing behind
    finally:
        await publisher.close()
        for peer in (pc, viewer.pc, third.pc):
            await peer.close()


def test_extension_block_matches_aiortc() -> None:
    """The one-byte extension block is byte for byte what aiortc's serializer writes."""
    from aiortc import rtp
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    for mid, mid_id, abs_id in (("0", 1, 3), ("video-long", 1, 3), ("1", 1, None), ("a", 4, 9)):
        ext, at = extension_block(mid, mid_id, abs_id)
        packet = rtp.RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3)
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = 0x123456 if abs_id else None
        ids = rtp.HeaderExtensionsMap()
        uris = {mid_id: URI_MID} | ({abs_id: URI_ABS_SEND_TIME} if abs_id else {})
        params = RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in uris.items()]
        )
        ids.configure(params)
        wire = packet.serialize(ids)
        if at >= 0:
            ext = ext[:at] + b"\x12\x34\x56" + ext[at + 3 :]
        assert wire[12 : -0 or None][: len(ext)] == ext, mid


async def test_one_shared_port_for_every_session(h264_clip: EncodedClip) -> None:
    """With a UDP mux, publisher and viewers all use one server port; media flows, lean too."""
    from media.udpmux import UdpMux

    mux = await UdpMux.open("127.0.0.1", 0)
    config = PeerConfig(udp_mux={"127.0.0.1": mux})
    pc, offer = await publisher_offer([h264_clip])
    answer, publisher = await accept_publisher(offer, config=config)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    viewers = [Viewer(("video",)) for _ in range(3)]
    try:
        sdps = [answer]
        for viewer in viewers:
            v_answer, _ = await accept_viewer(publisher, await viewer.offer(), config=config)
            await viewer.accept(v_answer)
            sdps.append(v_answer)
        await until(lambda: all(v.received["video"].frames > 10 for v in viewers), 10)
        assert all(f"127.0.0.1 {mux.port} typ host" in sdp for sdp in sdps)
        assert mux.sessions == 4 and publisher.forwarders["video"].viewers == 3
    finally:
        await publisher.close()
        for peer in (pc, *(v.pc for v in viewers)):
            await peer.close()
    await until(lambda: mux.sessions == 0, 2)  # every session's routes left with it
    mux.close()
