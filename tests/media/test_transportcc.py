"""Transport-cc with real aiortc peers: the WHIP answer negotiates it only when the
offer has both lines, and a simulcast publisher hears every packet reported."""

from __future__ import annotations

import itertools

import pytest
from aiortc import sdp as aiortc_sdp

from media import transportcc
from media.sessions import accept_publisher
from tests.media.simulsource import Layer, SimulcastPublisher
from tests.media.sources import EncodedClip, publisher_offer
from tests.media.twccdecode import decode
from tests.waiting import eventually

OFFER_EXTRA = "a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def with_transport_cc(offer: str) -> str:
    """An aiortc offer as a browser writes it: the extension and transport-cc feedback."""
    out = []
    for line in offer.splitlines():
        out.append(line)
        if line.startswith("a=mid:"):
            out.append(OFFER_EXTRA)
        if line.startswith("a=rtpmap:") and "rtx" not in line:
            out.append(f"a=rtcp-fb:{line[9:].split()[0]} transport-cc")
    return "\r\n".join(out) + "\r\n"


async def test_answer_negotiates_transport_cc_only_when_offered(
    h264_clip: EncodedClip, opus_clip: EncodedClip
) -> None:
    """A browser-like offer gets the extmap and rtcp-fb in both sections and feedback
    starts; an aiortc offer (no transport-cc) gets neither, its REMB unchanged."""
    pc, offer = await publisher_offer([h264_clip, opus_clip])
    await pc.close()
    plain, plain_session = await accept_publisher(offer)
    asked, asked_session = await accept_publisher(with_transport_cc(offer))
    try:
        assert plain_session.feedback is None
        assert transportcc.URI_TRANSPORT_CC not in plain and "transport-cc" not in plain
        assert "goog-remb" in plain
        assert asked_session.feedback is not None
        for m in aiortc_sdp.SessionDescription.parse(asked).media:
            assert [(x.id, x.uri) for x in m.rtp.headerExtensions if x.id == 5] == [
                (5, transportcc.URI_TRANSPORT_CC)
            ]
            for codec in m.rtp.codecs:
                fb = {f.type for f in codec.rtcpFeedback}
                assert ("transport-cc" in fb) == (codec.name != "rtx"), codec
    finally:
        await plain_session.close()
        await asked_session.close()
    assert asked_session.feedback.closed


@pytest.mark.parametrize("missing", ["extmap", "rtcp-fb"])
async def test_half_an_offer_negotiates_nothing(h264_clip: EncodedClip, missing: str) -> None:
    """The extension without the feedback type (or the reverse) is not transport-cc."""
    pc, offer = await publisher_offer([h264_clip])
    await pc.close()
    lines = with_transport_cc(offer).splitlines()
    offer = "\r\n".join(x for x in lines if missing not in x or "goog" in x) + "\r\n"
    answer, session = await accept_publisher(offer)
    try:
        assert session.feedback is None and "transport-cc" not in answer
    finally:
        await session.close()


async def test_an_aiortc_simulcast_publisher_hears_every_packet_reported(
    h264_clip: EncodedClip,
) -> None:
    """Real peers over loopback: a two-layer publisher numbering its packets across both
    layers gets feedback that reports every one of them received, in order of arrival."""
    layers = [Layer("h", h264_clip), Layer("l", h264_clip)]
    publisher = SimulcastPublisher(layers, transport_cc=True)
    answer, session = await accept_publisher(await publisher.offer())
    await publisher.accept(answer)
    try:
        assert publisher.answered_transport_cc and session.feedback is not None

        def reported() -> dict[int, int | None]:
            out: dict[int, int | None] = {}
            for packet in publisher.feedback:
                media, _, _, statuses = decode(packet)
                assert media in {x.ssrc for x in layers}
                for seq, at in statuses:
                    out[seq] = at if out.get(seq) is None else out[seq]
            return out

        await eventually(lambda: len(reported()) >= 200, within=15.0, what="200 reported")
        statuses = reported()
        assert sorted(statuses) == list(range(len(statuses)))  # from 0, no gap
        arrivals = [statuses[s] for s in sorted(statuses)]
        times = [at for at in arrivals if at is not None]
        assert len(times) == len(arrivals)  # loopback: nothing lost
        assert all(b >= a for a, b in itertools.pairwise(times))  # sent and received in order
        counts = [decode(p)[2] for p in publisher.feedback]
        assert counts == list(range(len(counts)))  # the feedback packet count runs on
    finally:
        await session.close()
        await publisher.close()
    assert session.feedback.closed
