"""WHIP and WHEP offers read before any state: real aiortc offers, and junk."""

from __future__ import annotations

import pytest

from media.offers import check_publisher_offer, check_viewer_offer
from media.peers import NegotiationError
from tests.media.sources import EncodedClip, Viewer, publisher_offer

JUNK = [
    "v=0\r\nnonsense",
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n",
]


async def viewer_offer(kinds: tuple[str, ...] = ("audio", "video")) -> str:
    viewer = Viewer(kinds)
    try:
        return await viewer.offer()
    finally:
        await viewer.close()


@pytest.mark.parametrize("offer", JUNK)
def test_junk_is_refused_by_both(offer: str) -> None:
    """Text that starts v=0 but is no offer: no sections, or no ICE, DTLS, RTCP mux."""
    for check in (check_publisher_offer, check_viewer_offer):
        with pytest.raises(NegotiationError):
            check(offer)


async def test_a_real_viewer_offer(h264_clip: EncodedClip) -> None:
    """A receive-only aiortc offer passes WHEP's check and is refused by WHIP's."""
    offer = await viewer_offer()
    assert [m.kind for m in check_viewer_offer(offer)] == ["audio", "video"]
    with pytest.raises(NegotiationError, match="must send"):
        check_publisher_offer(offer)
    pc, sending = await publisher_offer([h264_clip])
    await pc.close()
    assert [m.kind for m in check_publisher_offer(sending)] == ["video"]
    with pytest.raises(NegotiationError, match="receives nothing"):
        check_viewer_offer(sending)


async def test_missing_transport_attributes() -> None:
    """A real offer with its ICE password, RTCP mux or fingerprint taken out."""
    offer = await viewer_offer(("video",))
    for attribute, why in (("a=ice-pwd:", "ICE"), ("a=rtcp-mux", "rtcp-mux"),
                           ("a=fingerprint:", "fingerprint")):  # fmt: skip
        lines = [line for line in offer.split("\r\n") if not line.startswith(attribute)]
        with pytest.raises(NegotiationError, match=why):
            check_viewer_offer("\r\n".join(lines))


async def test_no_codec_a_publisher_sends() -> None:
    """A viewer that can only receive a codec no publisher may send is refused."""
    offer = await viewer_offer(("video",))
    kept = []
    for line in offer.split("\r\n"):
        if line.startswith(("a=rtpmap", "a=fmtp", "a=rtcp-fb")):
            continue
        if line.startswith("m=video"):  # VP9 only: aiortc neither takes nor sends it
            line = "m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=rtpmap:98 VP9/90000"
        kept.append(line)
    with pytest.raises(NegotiationError, match="none of the codecs"):
        check_viewer_offer("\r\n".join(kept))


async def test_a_simulcast_offer_is_checked_before_any_state(h264_clip: EncodedClip) -> None:
    """WHIP's check accepts a three-rid offer and refuses one it could not receive."""
    from tests.media.simulsource import simulcast_offer

    pc, sending = await publisher_offer([h264_clip])
    await pc.close()
    assert [m.kind for m in check_publisher_offer(simulcast_offer(sending, ["h", "m", "l"]))] == [
        "video"
    ]
    too_many = simulcast_offer(sending, ["a", "b", "c", "d", "e"])
    with pytest.raises(NegotiationError, match="1 to 4 layers"):
        check_publisher_offer(too_many)
