"""Every private aiortc, aioice and pylibsrtp name livecore touches, checked at import.

livecore forwards encoded media through seams aiortc does not publish. They
are reached only through this package, one module per object they belong to:

- ``receiver``: the receiver's decoder queue and jitter buffer, its track's
  queue, the PLI flag (``media.passthrough``);
- ``sender``: the sender's encoder, keyframe and NACK hooks, SSRCs and
  sender reports (``media.passthrough``, ``media.forwarder``);
- ``srtp``: the DTLS transport's SRTP sessions and libsrtp's ``srtp_protect``
  (``media.forwarder``, the lean load-test viewer);
- ``ice``: the aioice connection's host candidates, sockets and nominated
  route (``media.peers``, ``media.forwarder``, ``loadtests.leanrtp``).

In those modules, one accessor per seam, each private access on its own line
marked ``# noqa: SLF001`` with the seam it belongs to, and each module's
``checks()`` next to the accessors it protects; the rest of the code calls
the accessors.

``verify()`` runs when this package is imported (importing any of its
modules imports it first): with another aiortc than the pinned 1.16.x,
aioice 0.13.x or pylibsrtp 1.0.x (pyproject pins aiortc), or if a seam moved,
``import media.aiortc_seams`` raises ``ImportError`` naming what is missing,
instead of the server quietly decoding (or crashing mid-stream) later.
Upgrading aiortc means re-reading the seam modules against its source and
updating the pins.
"""

from __future__ import annotations

import aioice
import aiortc
import pylibsrtp

from media.aiortc_seams import ice, receiver, sender, srtp

SUPPORTED_AIORTC = "1.16."
SUPPORTED_AIOICE = "0.13."
SUPPORTED_PYLIBSRTP = "1.0."


def verify() -> None:
    """Raise ``ImportError`` unless the pins hold and every seam is where it was measured."""
    versions = {
        "aiortc": (getattr(aiortc, "__version__", "?"), SUPPORTED_AIORTC),
        "aioice": (getattr(aioice, "__version__", "?"), SUPPORTED_AIOICE),
        "pylibsrtp": (getattr(pylibsrtp, "__version__", "?"), SUPPORTED_PYLIBSRTP),
    }
    for name, (found, pinned) in versions.items():
        if not found.startswith(pinned):
            raise ImportError(
                f"media.aiortc_seams needs {name} {pinned}x (its private receiver, sender and "
                f"ICE seams are pinned), found {found}; re-verify the seams and update"
            )
    checks = {**receiver.checks(), **receiver.simulcast_checks(), **sender.checks()}
    checks.update({**srtp.checks(), **ice.checks()})
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        raise ImportError(f"aiortc/aioice lack seams media.aiortc_seams relies on: {missing}")


verify()
