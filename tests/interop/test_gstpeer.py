"""gstpeer.py's pure parts (standard library only): Link headers, candidates in an offer.

Loaded from its file: the script runs under Debian's Python, not as a module of
the test package, and these parts need no GStreamer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def gstpeer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gstpeer", Path(__file__).with_name("gstpeer.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_link_headers_give_ice_servers(gstpeer: ModuleType) -> None:
    """Quoted params with commas, several links in one field, other relations left out."""
    value = ('<stun:stun.example.net>; rel="ice-server", '
             '<turn:turn.example.net?transport=udp>; rel="ice-server"; '
             'username="user, with comma"; credential="myPassword"; '
             'credential-type="password", </other>; rel="next"')  # fmt: skip
    assert gstpeer.ice_servers([value, '<turn:b.example>; rel=ice-server']) == [
        {"urls": "stun:stun.example.net"},
        {"urls": "turn:turn.example.net?transport=udp", "username": "user, with comma",
         "credential": "myPassword", "credential-type": "password"},
        {"urls": "turn:b.example"},
    ]  # fmt: skip


def test_candidates_go_into_their_media_section(gstpeer: ModuleType) -> None:
    """Gathered candidates are added to their m= section, then end-of-candidates."""
    sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\nm=audio 9 x 111\r\na=mid:1\r\n"
    added = gstpeer.with_candidates(
        sdp, [(0, "candidate:1 1 UDP 2015363327 127.0.0.1 5000 typ host")]
    )
    assert added == (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
        "a=candidate:1 1 UDP 2015363327 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n"
        "m=audio 9 x 111\r\na=mid:1\r\n"
    )
    assert gstpeer.with_candidates(sdp, []) == sdp
    assert gstpeer.candidate_addresses(added) == ["udp 127.0.0.1 5000 host"]
