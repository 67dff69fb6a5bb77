"""Reading a publisher's simulcast offer and writing our answer's rid lines (RFC 8853)."""

from __future__ import annotations

import pytest

from media.peers import NegotiationError
from media.simulcast import (
    URI_REPAIRED_RID,
    URI_RID,
    Simulcast,
    answer_simulcast,
    offered_layers,
)

AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n"
VIDEO = "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=sendonly\r\n"
EXTMAPS = f"a=extmap:4 {URI_RID}\r\na=extmap:5 {URI_REPAIRED_RID}\r\n"


def offer(*lines: str, extmaps: str = EXTMAPS) -> str:
    return "v=0\r\n" + AUDIO + VIDEO + extmaps + "".join(x + "\r\n" for x in lines)


def test_three_layers_in_the_offer_order() -> None:
    """Chrome's shape: three rids that send, the list, both extensions."""
    sdp = offer("a=rid:h send", "a=rid:m send", "a=rid:l send", "a=simulcast:send h;m;l")
    assert offered_layers(sdp) == Simulcast(("h", "m", "l"), 4, 5)


def test_a_single_stream_is_not_simulcast() -> None:
    """No a=simulcast: the publisher sends one stream, as before."""
    assert offered_layers(offer()) is None
    assert offered_layers("v=0\r\n" + AUDIO) is None


def test_obs_style_layers_alternatives_and_paused() -> None:
    """Numeric rids, restrictions after the direction, an alternative and a paused layer."""
    sdp = offer(
        "a=rid:0 send max-width=1280;max-height=720",
        "a=rid:1 send",
        "a=rid:2 send",
        "a=simulcast:send 0;~1;2,1",
        extmaps=f"a=extmap:3 {URI_RID}\r\n",
    )
    assert offered_layers(sdp) == Simulcast(("0", "1", "2"), 3, None)


@pytest.mark.parametrize(
    ("lines", "extmaps", "fault"),
    [
        (["a=rid:a send", "a=simulcast:send a;b"], EXTMAPS, "'b' has no a=rid"),
        (["a=rid:a recv", "a=simulcast:send a"], EXTMAPS, "'a' has no a=rid"),
        ([f"a=rid:{i} send" for i in "abcde"] + ["a=simulcast:send a;b;c;d;e"], EXTMAPS, "1 to 4"),
        (["a=rid:a send", "a=simulcast:send a;a"], EXTMAPS, "listed twice"),
        (["a=rid:a send", "a=simulcast:recv a"], EXTMAPS, "must be 'send"),
        (["a=rid:a send", "a=simulcast:send a"], "", "rtp-stream-id"),
        (["a=rid:" + "x" * 17 + " send"], EXTMAPS, "unreadable a=rid"),
        (["a=rid:a send", "a=simulcast:send a", "a=simulcast:send a"], EXTMAPS, "more than one"),
        (["a=rid:a send", "a=simulcast:send a;b$"], EXTMAPS, "unreadable rid"),
    ],
)
def test_refusals_name_the_fault(lines: list[str], extmaps: str, fault: str) -> None:
    """A simulcast the server cannot receive is refused with what is wrong."""
    with pytest.raises(NegotiationError, match=fault):
        offered_layers(offer(*lines, extmaps=extmaps))


def test_answer_mirrors_the_layers_after_the_mid() -> None:
    """a=rid:<id> recv per layer and a=simulcast:recv in the video section only."""
    answer = answer_simulcast("v=0\r\n" + AUDIO + VIDEO, ("h", "m", "l"))
    lines = answer.split("\r\n")
    at = lines.index("a=mid:1")
    assert lines[at + 1 : at + 5] == [
        "a=rid:h recv", "a=rid:m recv", "a=rid:l recv", "a=simulcast:recv h;m;l",
    ]  # fmt: skip
    assert answer.count("a=rid:") == 3 and answer.endswith("\r\n")
    with pytest.raises(NegotiationError, match="no video section"):
        answer_simulcast("v=0\r\n" + AUDIO, ("h",))
