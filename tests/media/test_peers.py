"""Peer connections: explicit configuration, loopback-only ICE, codec choice."""

from __future__ import annotations

import pytest
from aiortc import RTCIceCandidate, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media.peers import (
    NegotiationError,
    PeerConfig,
    candidate_addresses,
    choose_publisher_codec,
    codec_preferences,
    create_peer_connection,
    filter_candidates,
    is_loopback,
    restrict_host_addresses,
)
from tests.waiting import eventually


def test_default_configuration_has_no_ice_servers() -> None:
    """Never aiortc's default public STUN: the configuration lists no ICE server."""
    config = PeerConfig().rtc_configuration()
    assert config.iceServers == []
    assert config.bundlePolicy == RTCBundlePolicy.MAX_BUNDLE
    assert PeerConfig().loopback_only and not PeerConfig(host_addresses=None).loopback_only


async def test_offer_advertises_loopback_candidates_only() -> None:
    """Host candidates are gathered on 127.0.0.1 only (aioice alone would skip it)."""
    pc = create_peer_connection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    addresses = candidate_addresses(pc.localDescription.sdp)
    assert addresses == ["127.0.0.1", "127.0.0.1"]  # one transport (max-bundle), listed twice
    assert "stun" not in pc.localDescription.sdp.lower()
    await pc.close()


async def test_restricting_after_gathering_is_refused() -> None:
    """Restricting a gatherer that already gathered would be a silent lie: it raises."""
    pc = create_peer_connection(PeerConfig(host_addresses=("127.0.0.1",)))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
    restrict_host_addresses(gatherer, ["127.0.0.1"])  # the same list again: harmless
    with pytest.raises(RuntimeError):
        restrict_host_addresses(gatherer, ["127.0.0.2"])
    await pc.close()


def test_remote_candidates_off_loopback_are_dropped() -> None:
    """LAN addresses and mDNS names never reach aioice in loopback mode."""
    sdp = "\r\n".join(
        [
            "v=0",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
            "a=candidate:2 1 udp 2130706431 192.168.1.20 5000 typ host",
            "a=candidate:3 1 udp 2130706431 abcd-1234.local 5000 typ host",
            "a=candidate:4 1 udp 2130706431 ::1 5000 typ host",
            "a=end-of-candidates",
        ]
    )
    kept = filter_candidates(sdp, PeerConfig().allows_remote)
    assert candidate_addresses(kept) == ["127.0.0.1", "::1"]
    assert "a=end-of-candidates" in kept
    everything = filter_candidates(sdp, PeerConfig(host_addresses=None).allows_remote)
    assert len(candidate_addresses(everything)) == 4
    assert is_loopback("127.0.0.2") and not is_loopback("x.local")


async def test_trickled_candidates_off_loopback_are_ignored() -> None:
    """addIceCandidate drops a LAN candidate instead of pairing with it."""
    offerer, answerer = create_peer_connection(), create_peer_connection()
    offerer.addTransceiver("video", direction="sendrecv")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    lan = RTCIceCandidate(
        component=1,
        foundation="9",
        ip="192.168.1.20",
        port=9,
        priority=1,
        protocol="udp",
        type="host",
        sdpMid="0",
    )
    await answerer.addIceCandidate(lan)
    transport = answerer.getTransceivers()[0].receiver.transport.transport
    assert [c.ip for c in transport.getRemoteCandidates()] == ["127.0.0.1"]
    await offerer.close()
    await answerer.close()


def test_codec_preferences() -> None:
    """H.264 pm=1 constrained baseline first, then RTX; VP8 + RTX; Opus alone."""
    h264 = codec_preferences("video", "video/H264")
    assert [c.mimeType for c in h264] == ["video/H264", "video/H264", "video/rtx"]
    assert h264[0].parameters["profile-level-id"] == "42e01f"
    assert all(c.parameters.get("packetization-mode") == "1" for c in h264[:2])
    assert [c.mimeType for c in codec_preferences("video", "video/VP8")] == [
        "video/VP8",
        "video/rtx",
    ]
    assert [c.mimeType for c in codec_preferences("audio", "audio/opus")] == ["audio/opus"]
    with pytest.raises(NegotiationError):
        codec_preferences("video", "video/AV1")


def _codec(mime: str, pt: int, **params: str) -> RTCRtpCodecParameters:
    rate = 48000 if mime.startswith("audio") else 90000
    parameters: dict[str, int | str | None] = dict(params)
    return RTCRtpCodecParameters(
        mimeType=mime, clockRate=rate, payloadType=pt, parameters=parameters
    )


def test_publisher_codec_choice() -> None:
    """A publisher offering H.264 pm=1 sends H.264; VP8-only is accepted; else refused."""
    h264 = _codec("video/H264", 102, **{"packetization-mode": "1", "profile-level-id": "42e01f"})
    h264_pm0 = _codec(
        "video/H264", 104, **{"packetization-mode": "0", "profile-level-id": "42e01f"}
    )
    vp8 = _codec("video/VP8", 96)
    assert choose_publisher_codec("video", [vp8, h264]) == "video/H264"
    assert choose_publisher_codec("video", [vp8, h264_pm0]) == "video/VP8"
    with pytest.raises(NegotiationError):
        choose_publisher_codec("video", [h264_pm0])
    assert choose_publisher_codec("audio", [_codec("audio/opus", 111)]) == "audio/opus"
    with pytest.raises(NegotiationError):
        choose_publisher_codec("audio", [_codec("audio/PCMU", 0)])


async def test_answer_prefers_h264_even_when_offered_second() -> None:
    """An answerer with preferences answers H.264 + RTX first whatever the offer's order."""
    offerer, answerer = create_peer_connection(), create_peer_connection()
    offerer.addTransceiver("video", direction="sendonly")  # aiortc offers VP8 first
    await offerer.setLocalDescription(await offerer.createOffer())
    transceiver = answerer.addTransceiver("video", direction="recvonly")
    transceiver.setCodecPreferences(codec_preferences("video", "video/H264"))
    await answerer.setRemoteDescription(
        RTCSessionDescription(sdp=offerer.localDescription.sdp, type="offer")
    )
    await answerer.setLocalDescription(await answerer.createAnswer())
    answer = aiortc_sdp.SessionDescription.parse(answerer.localDescription.sdp)
    names = [c.mimeType for c in answer.media[0].rtp.codecs]
    assert names[0] == "video/H264" and "video/VP8" not in names and "video/rtx" in names
    await offerer.close()
    await answerer.close()


@pytest.mark.parametrize("trickled", [False, True])
async def test_a_peer_whose_candidates_were_all_dropped_connects_peer_reflexive(
    trickled: bool,
) -> None:
    """An offer whose only candidates are refused (an address off loopback, as a phone's
    mDNS name or LAN address is) and that says end-of-candidates, in the SDP or trickled,
    still connects: the node learns the peer from its first check (peer-reflexive)
    instead of failing at end-of-candidates before that check arrives."""
    offerer, answerer = create_peer_connection(), create_peer_connection()
    offerer.addTransceiver("video", direction="sendrecv")
    await offerer.setLocalDescription(await offerer.createOffer())
    lines = [
        line.replace(" 127.0.0.1 ", " 203.0.113.7 ") if line.startswith("a=candidate:") else line
        for line in offerer.localDescription.sdp.splitlines()
    ]
    if trickled:
        lines = [line for line in lines if not line.startswith("a=candidate:")]
    else:
        lines = [*lines, "a=end-of-candidates"]
    await answerer.setRemoteDescription(
        RTCSessionDescription(sdp="\r\n".join(lines) + "\r\n", type="offer")
    )
    if trickled:
        await answerer.addIceCandidate(None)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    states = {"offerer": offerer, "answerer": answerer}
    await eventually(
        lambda: all(pc.iceConnectionState == "completed" for pc in states.values()),
        within=10,
        what="both sides connected",
    )
    transport = answerer.getTransceivers()[0].receiver.transport.transport
    assert [c.type for c in transport.getRemoteCandidates()] == ["prflx"]
    await offerer.close()
    await answerer.close()
