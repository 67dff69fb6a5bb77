"""The package that touches aiortc/aioice privates refuses versions it was not checked on."""

from __future__ import annotations

import aioice
import aiortc
import pytest

from media import aiortc_seams
from media.aiortc_seams import ice, receiver, sender, srtp


def test_the_pinned_versions_pass() -> None:
    """The installed aiortc and aioice are the pinned ones, with every seam in place."""
    aiortc_seams.verify()


def test_a_changed_aiortc_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another aiortc version is refused at import time, naming the pin."""
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with pytest.raises(ImportError, match=r"aiortc 1\.16"):
        aiortc_seams.verify()


def test_a_changed_aioice_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another aioice version is refused too: the ICE gathering seam is pinned."""
    monkeypatch.setattr(aioice, "__version__", "0.14.0")
    with pytest.raises(ImportError, match=r"aioice 0\.13"):
        aiortc_seams.verify()


def test_a_moved_seam_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seam that moved is named in the error (here: the sender's RTX history size)."""
    monkeypatch.delattr(aiortc.rtcrtpsender, "RTP_HISTORY_SIZE")
    with pytest.raises(ImportError, match="RTP_HISTORY_SIZE"):
        aiortc_seams.verify()


def test_every_seam_module_checks_its_own_seams() -> None:
    """Each seam module's checks hold on the pinned versions and name seams no other names."""
    modules = (receiver, sender, srtp, ice)
    names = [name for module in modules for name in module.checks()]
    assert all(all(module.checks().values()) for module in modules)
    assert len(names) == len(set(names)) == 36
