"""Simulcast ingest end to end over loopback: an aiortc publisher sends three rids on one
m-section; the server demultiplexes them into one pass-through relay per layer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from media import metrics
from media.forwarder import LeanForwarder
from media.sessions import PublisherSession, accept_publisher
from tests.media.simulsource import Layer, SimulcastPublisher
from tests.media.sources import EncodedClip, encode_video_clip, publisher_offer
from tests.waiting import eventually

SIZES = {"h": (640, 360), "m": (320, 180), "l": (160, 90)}
RATES = {"h": 2_500_000, "m": 500_000, "l": 120_000}


@pytest.fixture(scope="session")
def layer_clips() -> dict[str, EncodedClip]:
    """One H.264 clip per layer, each its own size and bitrate, a keyframe every 5 s."""
    return {
        rid: encode_video_clip("video/H264", frames=150, gop=150, size=SIZES[rid], bit_rate=rate)
        for rid, rate in RATES.items()
    }


@pytest.fixture
async def published(
    layer_clips: dict[str, EncodedClip],
) -> AsyncIterator[tuple[SimulcastPublisher, PublisherSession, str]]:
    publisher = SimulcastPublisher([Layer(rid, clip) for rid, clip in layer_clips.items()])
    answer, session = await accept_publisher(await publisher.offer())
    await publisher.accept(answer)
    try:
        yield publisher, session, answer
    finally:
        await session.close()
        await publisher.close()


async def test_three_rids_become_three_relays(
    published: tuple[SimulcastPublisher, PublisherSession, str],
) -> None:
    """Each rid's frames reach its own relay, whole, keyframes marked, nothing decoded."""
    publisher, session, answer = published
    assert "a=simulcast:recv h;m;l" in answer
    assert all(f"a=rid:{rid} recv" in answer for rid in "hml")
    assert "rtp-stream-id" in answer and publisher.answered_rid
    assert list(session.layers) == ["h", "m", "l"]
    assert session.relays["video"] is session.layers["h"]
    await eventually(
        lambda: all(r.stats.frames_in >= 30 for r in session.layers.values()), within=10.0
    )
    for rid, relay in session.layers.items():
        assert relay.has_keyframe  # each clip starts on a keyframe
        first = bytes(relay.gop_slots()[0].packet)
        clip = next(x for x in publisher.layers if x.rid == rid).clip
        assert first[-64:] == clip.frames[0][0][-64:]  # that layer's own keyframe
    assert session.demux is not None and session.demux.unrouted == 0
    assert metrics.codec_ops.value == 0


async def test_a_layer_keyframe_request_reaches_that_layer_only(
    published: tuple[SimulcastPublisher, PublisherSession, str],
) -> None:
    """A keyframe asked of the m relay is a PLI to m's SSRC, not to h's or l's."""
    publisher, session, _ = published
    await eventually(lambda: all(r.head >= 5 for r in session.layers.values()), within=10.0)
    before = {x.rid: x.plis for x in publisher.layers}
    session.layers["m"].request_keyframe("test")
    await eventually(lambda: publisher.layers[1].plis > before["m"], within=3.0)
    after = {x.rid: x.plis for x in publisher.layers}
    assert after["h"] == before["h"] and after["l"] == before["l"]


async def test_a_single_stream_publisher_is_served_as_before(h264_clip: EncodedClip) -> None:
    """No rids in the offer: no simulcast lines, no layers, the single-layer lean forwarder."""
    pc, offer = await publisher_offer([h264_clip])
    answer, session = await accept_publisher(offer)
    try:
        assert "a=simulcast" not in answer and "a=rid" not in answer
        assert "rtp-stream-id" not in answer
        assert session.layers == {} and session.demux is None
        assert type(session.forwarder("video")) is LeanForwarder
    finally:
        await session.close()
        await pc.close()
