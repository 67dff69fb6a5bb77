"""The DTLS transport's seams: its SRTP sessions, and libsrtp for C code that protects.

The lean forwarder protects a viewer's RTP with the DTLS transport's own
outbound SRTP session, from C (``media/_rtpfast.c`` calls libsrtp's
``srtp_protect`` on the session's ``srtp_t``); the lean load-test viewer
reads datagrams below the transport and unprotects them as
``RTCDtlsTransport._recv_next`` does. Every private name is read here.
"""

from __future__ import annotations

import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import is_rtcp
from pylibsrtp import _binding as srtp_binding

from media.aiortc_seams.introspect import Checks, code_names


def checks() -> Checks:
    """The DTLS/SRTP seams, checked against the installed aiortc and pylibsrtp."""
    # Reading private methods to check them is the point of this function.
    dtls_next = RTCDtlsTransport._recv_next  # noqa: SLF001 - lean receive seam
    dtls_send = RTCDtlsTransport._send_rtp  # noqa: SLF001 - lean send seam
    srtp_session = pylibsrtp.Session.__init__
    return {
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
