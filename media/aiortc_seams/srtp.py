"""The DTLS transport's seams: its SRTP sessions, libsrtp for C code that protects,
and the cipher suites its handshake offers.

The lean forwarder protects a viewer's RTP with the DTLS transport's own
outbound SRTP session, from C (``media/_rtpfast.c`` calls libsrtp's
``srtp_protect`` on the session's ``srtp_t``); the lean load-test viewer
reads datagrams below the transport and unprotects them as
``RTCDtlsTransport._recv_next`` does. Every private name is read here.
"""

from __future__ import annotations

import pylibsrtp
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsTransport, SRTPProtectionProfile
from aiortc.rtp import is_rtcp
from OpenSSL import SSL
from pylibsrtp import _binding as srtp_binding

from media.aiortc_seams.introspect import Checks, code_names


def checks() -> Checks:
    """The DTLS/SRTP seams, checked against the installed aiortc and pylibsrtp."""
    # Reading private methods to check them is the point of this function.
    dtls_next = RTCDtlsTransport._recv_next  # noqa: SLF001 - lean receive seam
    dtls_send = RTCDtlsTransport._send_rtp  # noqa: SLF001 - lean send seam
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
        "aiortc.rtp.is_rtcp tells SRTCP from SRTP by the second byte": (
            is_rtcp(bytes([0x80, 200])) and not is_rtcp(bytes([0x80, 0x80 | 96]))
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

    def create_ssl_context(
        self: RTCCertificate, srtp_profiles: list[SRTPProtectionProfile]
    ) -> SSL.Context:
        context: SSL.Context = original(self, srtp_profiles)
        context.set_cipher_list(DTLS_CIPHERS)
        return context

    create_ssl_context.__wrapped__ = original  # type: ignore[attr-defined]
    RTCCertificate._create_ssl_context = create_ssl_context  # type: ignore[method-assign]  # noqa: SLF001 - cipher seam
