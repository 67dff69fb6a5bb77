"""The answer to an ICE restart PATCH, and the restarts that are refused."""

from __future__ import annotations

import pytest

from media.icerestart import IceRestartRefused, answer_fragment, restart_ice
from media.sdpfrag import parse_sdpfrag
from media.sessions import accept_publisher
from tests.media.sources import EncodedClip, publisher_offer

ANSWER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=ice-options:trickle\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n"
    "a=ice-ufrag:old1\r\na=ice-pwd:oldoldoldoldoldoldoldo\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)


def test_answer_fragment_repeats_the_ice_lines_and_names_the_new_credentials() -> None:
    """Session-level ICE lines of the answer, its first m= line and mid, the new
    credentials, the candidates, end-of-candidates; the parser reads it back."""
    cand = "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"
    frag = answer_fragment(ANSWER, "0", "newu", "n" * 22, [cand])
    assert frag.splitlines() == [
        "a=group:BUNDLE 0 1", "a=ice-options:trickle", "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:0", "a=ice-ufrag:newu", f"a=ice-pwd:{'n' * 22}", cand, "a=end-of-candidates",
    ]  # fmt: skip
    parsed = parse_sdpfrag(frag)
    assert (parsed.ufrag, parsed.mids, len(parsed.candidates)) == ("newu", ["0"], 1)


async def test_a_session_not_connected_yet_is_not_restarted(h264_clip: EncodedClip) -> None:
    """Before ICE completed there is nothing to restart: refused, credentials unchanged."""
    pc, offer = await publisher_offer([h264_clip])
    _, session = await accept_publisher(offer)
    try:
        frag = parse_sdpfrag(f"a=ice-ufrag:abcd\r\na=ice-pwd:{'p' * 22}\r\n")
        before = (session.remote_ice, session.ice_tag)
        with pytest.raises(IceRestartRefused, match="not completed"):
            await restart_ice(session, frag)
        assert (session.remote_ice, session.ice_tag) == before
    finally:
        await session.close()
        await pc.close()
