"""The DTLS cipher seam: the suites every connection's handshake offers."""

from __future__ import annotations

import types

from aiortc import rtcpeerconnection
from aiortc.rtcdtlstransport import SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_SHA1_80, RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from OpenSSL import SSL

from media.aiortc_seams import srtp
from media.peers import MediaPeerConnection, PeerConfig, create_peer_connection


def test_dtls_contexts_offer_rsa_suites_after_ecdsa() -> None:
    """A context aiortc builds offers the ECDSA suites first, then the RSA ones (a DTLS
    server with an RSA certificate, e.g. GStreamer, then finds a shared cipher)."""
    certificate = RTCCertificate.generateCertificate()
    profiles = [SRTP_AEAD_AES_128_GCM]
    context = certificate._create_ssl_context(profiles)
    connection = SSL.Connection(context, None)
    # TLS 1.3 suites lead the list whatever is set (DTLS 1.2 ignores them).
    offered = [name for name in connection.get_cipher_list() if not name.startswith("TLS_")]
    assert offered == srtp.DTLS_CIPHERS.decode().split(":")
    srtp.accept_rsa_dtls_servers()  # a second install changes nothing
    again = SSL.Connection(certificate._create_ssl_context(profiles), None).get_cipher_list()
    assert [name for name in again if not name.startswith("TLS_")] == offered


def test_one_context_per_certificate_and_profiles_without_a_session_cache() -> None:
    """Connections with one certificate share its context (building one costs more than a
    handshake's signature); a resumed session would skip the peer's certificate, so none
    is cached."""
    certificate = RTCCertificate.generateCertificate()
    profiles = [SRTP_AEAD_AES_128_GCM]
    context = certificate._create_ssl_context(profiles)
    assert certificate._create_ssl_context(profiles) is context
    assert certificate._create_ssl_context([SRTP_AES128_CM_SHA1_80]) is not context
    other = RTCCertificate.generateCertificate()
    assert other._create_ssl_context(profiles) is not context
    assert context.get_session_cache_mode() == SSL.SESS_CACHE_OFF


async def test_peer_connections_share_one_certificate_until_it_is_renewed() -> None:
    """Every peer connection of the process answers with the same fingerprint (browsers
    keep one certificate per origin); after the renewal age a new one is made, and a
    connection keeps the certificate it started with."""
    first = create_peer_connection(PeerConfig())
    second = create_peer_connection(PeerConfig())
    try:
        assert _fingerprints(first) == _fingerprints(second)
        names = vars(rtcpeerconnection)
        shared = names["RTCCertificate"]
        assert getattr(shared, "shared", False)
        renewed = _renewing_class(shared)
        names["RTCCertificate"] = renewed
        try:
            third = create_peer_connection(PeerConfig())
        finally:
            names["RTCCertificate"] = shared
        assert _fingerprints(third) != _fingerprints(first)
        assert _fingerprints(first) == _fingerprints(second)
        await third.close()
    finally:
        await first.close()
        await second.close()


def _fingerprints(pc: MediaPeerConnection) -> list[str]:
    certificates = pc._RTCPeerConnection__certificates  # type: ignore[attr-defined]
    return [f.value for c in certificates for f in c.getFingerprints()]


def _renewing_class(shared: type[RTCCertificate]) -> type[RTCCertificate]:
    """A stand-in for the shared class once its certificate is older than the renewal age:
    ``share_certificates(max_age_s=0)`` installs a fresh one on a scratch module."""
    scratch = types.ModuleType("scratch")
    vars(scratch)["RTCCertificate"] = RTCCertificate
    original = srtp.rtcpeerconnection
    srtp.rtcpeerconnection = scratch  # type: ignore[assignment]
    try:
        srtp.share_certificates(max_age_s=0.0)
    finally:
        srtp.rtcpeerconnection = original
    renewing: type[RTCCertificate] = vars(scratch)["RTCCertificate"]
    assert renewing is not shared
    return renewing


async def test_observe_rtp_sees_every_routed_packet_until_undone() -> None:
    """The transport-cc seams: each packet the transport routes is shown to the observer
    first (routed as before), and no longer once the observer is removed; the
    transport parses the sequence number extension before any receiver starts."""
    pc = create_peer_connection()
    try:
        dtls = pc.addTransceiver("video", direction="recvonly").receiver.transport
        seen: list[int] = []
        undo = srtp.observe_rtp(dtls, lambda packet: seen.append(packet.sequence_number))
        router = dtls._rtp_router
        assert router.route_rtp(RtpPacket(payload_type=96, sequence_number=7)) is None
        undo()
        undo()  # twice is harmless
        router.route_rtp(RtpPacket(payload_type=96, sequence_number=8))
        assert seen == [7]
        assert not await srtp.send_rtcp(dtls, bytes(8))  # not connected: nothing sent
        uri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
        numbered = RtpPacket(payload_type=96, sequence_number=9)
        numbered.extensions.transport_sequence_number = 4321
        writer = HeaderExtensionsMap()
        writer.configure(
            RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(3, uri)])
        )
        data = numbered.serialize(writer)
        parsed = RtpPacket.parse(data, dtls._rtp_header_extensions_map)
        assert parsed.extensions.transport_sequence_number is None  # no receiver started yet
        srtp.parse_header_extension(dtls, uri, 3)
        parsed = RtpPacket.parse(data, dtls._rtp_header_extensions_map)
        assert parsed.extensions.transport_sequence_number == 4321
    finally:
        await pc.close()
