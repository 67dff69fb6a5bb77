"""The lean forwarder's per-viewer loop: the C extension when built, else pure Python.

``media._rtpfast`` (``media/_rtpfast.c``, built by ``pip install``) and
``media.rtpslow`` offer the same ``Viewer``, ``send_frame`` and ``resend``
(see ``media.rtpslow`` for what they do). ``LIVECORE_RTP_SPEEDUPS=0`` forces
the fallback (as python-websockets' ``WEBSOCKETS_NO_SPEEDUPS``).
"""

from __future__ import annotations

import os
from types import ModuleType

from media import rtpslow


def _load() -> ModuleType:
    if os.environ.get("LIVECORE_RTP_SPEEDUPS", "1") == "0":
        return rtpslow
    try:
        from media import _rtpfast  # type: ignore[attr-defined]
    except ImportError:
        return rtpslow
    fast: ModuleType = _rtpfast
    return fast


impl = _load()
IMPLEMENTATION = "c" if impl is not rtpslow else "python"
Viewer = impl.Viewer
send_frame = impl.send_frame
resend = impl.resend
