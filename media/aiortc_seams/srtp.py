"""The DTLS transport's seams: its SRTP sessions, libsrtp for C code that protects,
the cipher suites its handshake offers, and its RTP path for transport-wide feedback.

The lean forwarder protects a viewer's RTP with the DTLS transport's own
outbound SRTP session, from C (``media/_rtpfast.c`` calls libsrtp's
``srtp_protect`` on the session's ``srtp_t``); the lean load-test viewer
reads datagrams below the transport and unprotects them as
``RTCDtlsTransport._recv_next`` does. Every private name is read here.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import pylibsrtp
from aiortc import rtcpeerconnection
from aiortc.rtcdtlstransport import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsTransport,
    SRTPProtectionProfile,
    generate_certificate,
)
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import RtpPacket, is_rtcp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL
from pylibsrtp import _binding as srtp_binding

from media.aiortc_seams.introspect import Checks, code_names


def checks() -> Checks:
    """The DTLS/SRTP seams, checked against the installed aiortc and pylibsrtp."""
    # Reading private methods to check them is the point of this function.
    dtls_next = RTCDtlsTransport._recv_next  # noqa: SLF001 - lean receive seam
    dtls_send = RTCDtlsTransport._send_rtp  # noqa: SLF001 - lean send seam
    dtls_rtp = RTCDtlsTransport._handle_rtp_data  # noqa: SLF001 - transport-cc seam
    srtp_session = pylibsrtp.Session.__init__
    make_context = RTCCertificate._create_ssl_context  # noqa: SLF001 - cipher seam
    make_context = getattr(make_context, "__wrapped__", make_context)  # aiortc's own
    return {
        "RTCCertificate._create_ssl_context builds the DTLS context and sets its ciphers": (
            {"set_cipher_list", "use_certificate"} <= code_names(make_context)
        ),
        "RTCDtlsTransport._send_rtp protects with _tx_srtp and sends on the ICE transport": (
            {"_tx_srtp", "protect", "_send"} <= code_names(dtls_send)
        ),
        "pylibsrtp.Session keeps its srtp_t * in _srtp; srtp_protect(srtp_t, void *, int *)": (
            "_srtp" in code_names(srtp_session)
            and str(srtp_binding.ffi.typeof(srtp_binding.lib.srtp_protect))
            == "<ctype 'srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)'>"
        ),
        "RTCDtlsTransport._recv_next reads RTCIceTransport._recv, unprotects SRTP": (
            {"_recv", "unprotect", "unprotect_rtcp", "_handle_rtp_data"} <= code_names(dtls_next)
        ),
        "RTCPeerConnection.__init__ gets its certificate from RTCCertificate.generateCertificate": (
            {"RTCCertificate", "generateCertificate"}
            <= code_names(rtcpeerconnection.RTCPeerConnection.__init__)
        ),
        "aiortc.rtp.is_rtcp tells SRTCP from SRTP by the second byte": (
            is_rtcp(bytes([0x80, 200])) and not is_rtcp(bytes([0x80, 0x80 | 96]))
        ),
        "RTCDtlsTransport._handle_rtp_data hands each parsed packet to _rtp_router.route_rtp": (
            {"_rtp_router", "route_rtp"} <= code_names(dtls_rtp)
            and "_rtp_router" in code_names(RTCDtlsTransport.__init__)
        ),
        "RTCDtlsTransport parses RTP with its _rtp_header_extensions_map": (
            "_rtp_header_extensions_map" in code_names(dtls_rtp)
            and "_rtp_header_extensions_map" in code_names(RTCDtlsTransport.__init__)
        ),
        "RTCDtlsTransport._send_rtp protects RTCP with protect_rtcp": (
            {"is_rtcp", "protect_rtcp"} <= code_names(dtls_send)
        ),
    }


def tx_srtp(dtls: RTCDtlsTransport) -> pylibsrtp.Session | None:
    """The DTLS transport's outbound SRTP session (None until DTLS is connected)."""
    session: pylibsrtp.Session | None = dtls._tx_srtp  # noqa: SLF001 - lean send seam
    return session


def srtp_pointers(session: pylibsrtp.Session) -> tuple[int, int]:
    """``(srtp_t, &srtp_protect)`` as integers, for C code that protects on this session.

    Both live in pylibsrtp's cffi module (its bundled libsrtp 2.7); the
    ``srtp_t`` stays valid as long as ``session`` does.
    """
    ffi, lib = srtp_binding.ffi, srtp_binding.lib
    context = session._srtp[0]  # noqa: SLF001 - pylibsrtp seam
    return int(ffi.cast("uintptr_t", context)), int(
        ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))
    )


#: aiortc offers only ECDHE-ECDSA suites, which need the DTLS *server's*
#: certificate to be ECDSA. When a WHIP client's offer says ``a=setup:actpass``
#: (OBS, GStreamer) the node is the DTLS client, and a peer with an RSA
#: certificate (GStreamer 1.22's webrtcbin) then fails with "no shared cipher".
#: The same forward-secret AEAD/CBC suites with RSA authentication are added
#: after them; our own certificate stays ECDSA, so as a server nothing changes.
DTLS_CIPHERS = b":".join([
    b"ECDHE-ECDSA-AES128-GCM-SHA256", b"ECDHE-ECDSA-CHACHA20-POLY1305",
    b"ECDHE-ECDSA-AES128-SHA", b"ECDHE-ECDSA-AES256-SHA",
    b"ECDHE-RSA-AES128-GCM-SHA256", b"ECDHE-RSA-CHACHA20-POLY1305",
    b"ECDHE-RSA-AES128-SHA", b"ECDHE-RSA-AES256-SHA",
])  # fmt: skip


def accept_rsa_dtls_servers() -> None:
    """Make every DTLS context aiortc creates offer ``DTLS_CIPHERS`` (idempotent).

    Wraps ``RTCCertificate._create_ssl_context`` once for the process: each
    connection's context is built as aiortc builds it, then its cipher list is
    replaced by the wider one.
    """
    original = RTCCertificate._create_ssl_context  # noqa: SLF001 - cipher seam
    if hasattr(original, "__wrapped__"):
        return
    contexts: weakref.WeakKeyDictionary[RTCCertificate, dict[bytes, SSL.Context]]
    contexts = weakref.WeakKeyDictionary()

    def create_ssl_context(
        self: RTCCertificate, srtp_profiles: list[SRTPProtectionProfile]
    ) -> SSL.Context:
        # One context per certificate and SRTP profile list, shared by every
        # connection that uses them (an SSL_CTX is made to be shared; building
        # one costs more than a DTLS handshake's signature). No session cache:
        # every handshake is a full one, so every peer shows its certificate,
        # whose fingerprint aiortc checks against the SDP.
        key = b":".join(profile.openssl_profile for profile in srtp_profiles)
        per_certificate = contexts.setdefault(self, {})
        context = per_certificate.get(key)
        if context is None:
            context = original(self, srtp_profiles)
            context.set_cipher_list(DTLS_CIPHERS)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            per_certificate[key] = context
        return context

    create_ssl_context.__wrapped__ = original  # type: ignore[attr-defined]
    RTCCertificate._create_ssl_context = create_ssl_context  # type: ignore[method-assign]  # noqa: SLF001 - cipher seam


CERTIFICATE_MAX_AGE_S = 24 * 3600.0
"""How long the process's one DTLS certificate is handed to new connections."""


def share_certificates(max_age_s: float = CERTIFICATE_MAX_AGE_S) -> None:
    """Make every ``RTCPeerConnection`` of this process use one DTLS certificate,
    renewed every ``max_age_s`` (idempotent).

    aiortc generates an ECDSA key and signs a certificate for each peer
    connection, which costs about as much as the rest of answering an offer.
    Browsers use one certificate per origin for every connection; this does
    the same per process. A connection keeps the certificate it started
    with (aiortc's own certificates are valid for 30 days); the fingerprint in
    each answer is what authenticates it (RFC 8827 §6.5). Replaces the name
    ``RTCCertificate`` in ``aiortc.rtcpeerconnection`` only, which reads it
    for nothing but ``generateCertificate`` (checked in ``checks``).
    """
    names = vars(rtcpeerconnection)  # the module's globals, where __init__ looks it up
    if getattr(names["RTCCertificate"], "shared", False):
        return
    current: list[tuple[RTCCertificate, float]] = []

    class SharedCertificate(RTCCertificate):
        shared = True

        def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
            super().__init__(key=key, cert=cert)
            self._fingerprints: list[RTCDtlsFingerprint] | None = None

        def getFingerprints(self) -> list[RTCDtlsFingerprint]:
            # Every answer names them: computed once per certificate.
            if self._fingerprints is None:
                self._fingerprints = super().getFingerprints()
            return list(self._fingerprints)

        @classmethod
        def generateCertificate(cls) -> SharedCertificate:
            now = time.monotonic()
            if not current or now - current[0][1] >= max_age_s:
                key = ec.generate_private_key(ec.SECP256R1())
                current[:] = [(cls(key=key, cert=generate_certificate(key)), now)]
            return current[0][0]  # type: ignore[return-value]

    names["RTCCertificate"] = SharedCertificate


# -- transport-wide congestion control feedback (media.twcc) ------------------------


def observe_rtp(
    dtls: RTCDtlsTransport, observer: Callable[[RtpPacket], None]
) -> Callable[[], None]:
    """Call ``observer(packet)`` for every RTP packet ``dtls`` parses, before it is routed
    to a receiver (every m-section, layer, RTX and padding packet of the connection).

    Shadows ``route_rtp`` on this transport's router only; returns the undo.
    """
    router = dtls._rtp_router  # noqa: SLF001 - transport-cc seam
    route = router.route_rtp

    def observe_and_route(packet: RtpPacket) -> object:
        observer(packet)
        return route(packet)

    router.route_rtp = observe_and_route  # type: ignore[method-assign,assignment]

    def undo() -> None:
        if vars(router).get("route_rtp") is observe_and_route:
            del router.route_rtp

    return undo


def parse_header_extension(dtls: RTCDtlsTransport, uri: str, ext_id: int) -> None:
    """Make ``dtls`` parse the header extension ``uri`` (as ``ext_id``) from now on.

    aiortc configures its map only when a receiver starts, after DTLS is up:
    packets that arrive in between (a browser's first bandwidth probes) would be
    parsed without it. The receivers configure the same id again later.
    """
    extension = RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri)
    dtls._rtp_header_extensions_map.configure(  # noqa: SLF001 - transport-cc seam
        RTCRtpParameters(headerExtensions=[extension])
    )


async def send_rtcp(dtls: RTCDtlsTransport, data: bytes) -> bool:
    """Send one serialised RTCP packet on ``dtls`` (SRTCP); False if it is not connected."""
    try:
        await dtls._send_rtp(data)  # noqa: SLF001 - transport-cc seam
    except ConnectionError:
        return False
    return True
