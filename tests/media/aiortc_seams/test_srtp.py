"""The DTLS cipher seam: the suites every connection's handshake offers."""

from __future__ import annotations

from aiortc.rtcdtlstransport import SRTP_AEAD_AES_128_GCM, RTCCertificate
from OpenSSL import SSL

import media.peers  # noqa: F401 - installs the seam, as the server does
from media.aiortc_seams import srtp


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
