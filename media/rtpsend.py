"""The lean forwarder's per-viewer loop: the C extension when built, else pure Python.

``media._rtpfast`` (``media/_rtpfast.c``, built by ``pip install``) and
``media.rtpslow`` offer the same ``Viewer``, ``send_frame`` and ``resend``
(see ``media.rtpslow`` for what they do). ``LIVECORE_PURE_PYTHON=1`` forces
the fallback (as python-websockets' ``WEBSOCKETS_NO_SPEEDUPS``); without it a
missing extension is a broken install, which ``make test`` refuses
(tests/media/test_rtpsend.py) and the start banner names.
"""

from __future__ import annotations

import os
from types import ModuleType

from media import rtpslow


def pure_python_wanted() -> bool:
    """True when the operator asked for the fallback (``LIVECORE_PURE_PYTHON=1``)."""
    return os.environ.get("LIVECORE_PURE_PYTHON", "") == "1"


def _load() -> ModuleType:
    if pure_python_wanted():
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
