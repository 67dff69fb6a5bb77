"""Reading trickle-ice-sdpfrag bodies (RFC 8840): what is kept, what is refused, and why."""

from __future__ import annotations

import pytest

from media.sdpfrag import MAX_CANDIDATES, FragmentError, parse_sdpfrag

UFRAG, PWD = "EsAw", "P2uYro0UCOQ4zxjKXaWCBui1"
FRAG = f"""a=ice-options:trickle ice2
a=group:BUNDLE 0 1
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=mid:0
a=ice-ufrag:{UFRAG}
a=ice-pwd:{PWD}
a=candidate:1387637174 1 udp 2122260223 127.0.0.1 61764 typ host generation 0 ufrag EsAw
a=candidate:473322822 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0
a=candidate:2 1 UDP 1694498815 127.0.0.2 61765 typ srflx raddr 127.0.0.1 rport 61764
a=end-of-candidates
"""


def test_rfc_example_is_read() -> None:
    """RFC 9725's trickle example: credentials, the UDP candidates with their mid, the end."""
    frag = parse_sdpfrag(FRAG.replace("\n", "\r\n"))
    assert (frag.ufrag, frag.pwd, frag.mids) == (UFRAG, PWD, ["0"])
    assert [(c.mid, c.candidate.ip, c.candidate.port) for c in frag.candidates] == [
        ("0", "127.0.0.1", 61764), ("0", "127.0.0.2", 61765),
    ]  # fmt: skip
    srflx = frag.candidates[1].candidate
    assert (srflx.type, srflx.relatedAddress, srflx.relatedPort) == ("srflx", "127.0.0.1", 61764)
    assert frag.end_of_candidates
    assert not frag.restarts(UFRAG, PWD)
    assert frag.restarts("ysXw", PWD) and frag.restarts(UFRAG, "x" * 22)


def test_candidates_only_and_end_only() -> None:
    """No credentials is no restart; end-of-candidates alone is a valid fragment."""
    frag = parse_sdpfrag(
        "m=video 9 UDP/TLS/RTP/SAVPF 96\na=candidate:1 1 udp 1 127.0.0.1 9 typ host"
    )
    assert frag.ufrag is None and not frag.restarts(UFRAG, PWD) and len(frag.candidates) == 1
    assert parse_sdpfrag("a=end-of-candidates\r\n").end_of_candidates


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("", "empty"),
        ("hello", "line 1"),
        ("v=0\r\no=- 1 1 IN IP4 127.0.0.1", "a=, m= or c= only"),
        ("a=candidate:1 1 udp 1 127.0.0.1 9 typ host", "belongs in an m= section"),
        ("m=audio 9 X 1\na=candidate:1 1 udp 1 127.0.0.1 9 host", "typ"),
        ("m=audio 9 X 1\na=candidate:1 0 udp 1 127.0.0.1 9 typ host", "component"),
        ("m=audio 9 X 1\na=candidate:1 1 udp 99999999999 127.0.0.1 9 typ host", "priority"),
        ("m=audio 9 X 1\na=candidate:1 1 udp 1 127.0.0.1 70000 typ host", "port"),
        ("m=audio 9 X 1\na=candidate:1 1 udp 1 127.0.0.1 0 typ host", "not 0"),
        ("m=audio 9 X 1\na=candidate:1 1 udp 1 127.0.0.1 9 typ weird", "candidate type"),
        ("a=ice-ufrag:ab", "ice-ufrag must be"),
        ("a=ice-ufrag:abcd\na=ice-ufrag:abce", "a second, different ice-ufrag"),
        ("a=mid:0", "belongs in an m= section"),
        ("m=audio", "m= line needs"),
    ],
)
def test_bad_fragments_are_refused_naming_the_line(body: str, says: str) -> None:
    """Each malformed fragment raises FragmentError whose message names what is wrong."""
    with pytest.raises(FragmentError, match=says):
        parse_sdpfrag(body)


def test_bounds() -> None:
    """Too many lines or candidates are refused, not stored."""
    many = "m=audio 9 X 1\n" + "".join(
        f"a=candidate:{i} 1 udp 1 127.0.0.1 {1000 + i} typ host\n"
        for i in range(MAX_CANDIDATES + 1)
    )
    with pytest.raises(FragmentError, match="more than"):
        parse_sdpfrag(many)
    with pytest.raises(FragmentError, match="lines"):
        parse_sdpfrag("a=x\n" * 1000)
