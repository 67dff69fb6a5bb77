"""End to end over loopback: publisher → relay → viewers, all real aiortc peers.

Signalling is a function call. The publisher replays pre-encoded clips (it
never encodes while the test runs); the relay must not decode or encode;
the viewers decode with aiortc's own receivers and count what they decode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiortc import RTCSessionDescription

from media import metrics
from media.peers import (
    MediaPeerConnection,
    NegotiationError,
    PublisherGone,
    candidate_addresses,
    codec_preferences,
    is_loopback,
)
from media.relay import Relay
from media.sessions import PublisherSession, ViewerSession, accept_publisher, accept_viewer
from tests.media.sources import EncodedClip, EncodedTrack, Viewer, publisher_offer


@dataclass
class Stage:
    """A running publisher, its session, and every SDP exchanged (to check candidates)."""

    pc: MediaPeerConnection
    session: PublisherSession
    sdps: list[str] = field(default_factory=list)
    viewers: list[tuple[Viewer, ViewerSession]] = field(default_factory=list)

    def source(self, kind: str) -> EncodedTrack:
        for sender in self.pc.getSenders():
            if sender.track is not None and sender.track.kind == kind:
                assert isinstance(sender.track, EncodedTrack)
                return sender.track
        raise LookupError(kind)

    async def watch(self, kinds: tuple[str, ...]) -> Viewer:
        viewer = Viewer(kinds)
        offer = await viewer.offer()
        answer, session = await accept_viewer(self.session, offer)
        await viewer.accept(answer)
        self.sdps += [offer, answer]
        self.viewers.append((viewer, session))
        return viewer


@contextlib.asynccontextmanager
async def stage(clips: list[EncodedClip]) -> AsyncIterator[Stage]:
    pc, offer = await publisher_offer(clips)
    answer, session = await accept_publisher(offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    st = Stage(pc, session, [offer, answer])
    try:
        yield st
    finally:
        await session.close()
        await pc.close()
        for viewer, _ in st.viewers:
            await viewer.close()


async def until(predicate: Callable[[], bool], within: float) -> float:
    """Seconds until ``predicate()`` held (polled every 10 ms); fails after ``within`` s."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def decode_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "failed to decode" in r.getMessage()]


async def exercise(st: Stage, kinds: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    """Three viewers, a stalled subscriber, a late viewer; checks shared by both codecs."""
    relay: Relay = st.session.relays["video"]
    limits = relay.limits
    viewers = [await st.watch(kinds) for _ in range(3)]
    await until(lambda: all(v.received["video"].frames > 0 for v in viewers), 5.0)

    # A subscriber that reads three frames, then stalls for 2 s.
    stalled = relay.subscribe()
    for _ in range(3):
        await asyncio.wait_for(stalled.recv(), 2.0)
    before = [v.received["video"].frames for v in viewers]
    start, high_water = time.monotonic(), 0
    while time.monotonic() - start < 2.0:
        high_water = max(high_water, relay.buffered_frames)
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - start
    during = [v.received["video"].frames - b for v, b in zip(viewers, before, strict=True)]
    assert min(during) >= 0.8 * 30 * elapsed, during  # the stall slowed no one
    assert high_water <= limits.max_gop_frames + limits.max_lag_frames + 1
    assert relay.buffered_bytes <= limits.max_gop_bytes + 64 * 1024
    assert stalled.lag > limits.max_lag_frames  # it really fell behind ...
    resumed = await asyncio.wait_for(stalled.recv(), 3.0)
    assert resumed.is_keyframe and stalled.skips == 1  # ... and came back on a keyframe
    stalled.stop()

    # A late viewer starts at once from the cached GOP (the clip's GOP is 2 s).
    late = Viewer(kinds)
    offer = await late.offer()
    joined = time.monotonic()
    answer, session = await accept_viewer(st.session, offer)
    await late.accept(answer)
    st.sdps += [offer, answer]
    st.viewers.append((late, session))
    await until(lambda: late.received["video"].first_at is not None, 3.0)
    first_frame_after = (late.received["video"].first_at or 0) - joined
    assert first_frame_after < 0.8, first_frame_after
    assert session.tracks["video"].first_frame_keyframe

    for viewer in viewers:
        for kind in kinds:
            assert viewer.received[kind].frames > 0, kind
        assert viewer.received["video"].sizes == {(320, 240)}
    assert all(is_loopback(a) for sdp in st.sdps for a in candidate_addresses(sdp))
    assert all(candidate_addresses(sdp) for sdp in st.sdps)
    assert decode_failures(caplog) == []
    assert metrics.codec_ops.value == 0, metrics.codec_ops.by_reason()
    assert relay.stats.packetised <= relay.stats.frames_in  # once per frame, not per viewer
    assert relay.stats.decoded_frames_refused == 0


async def test_h264_and_opus_forwarded_to_viewers(
    h264_clip: EncodedClip, opus_clip: EncodedClip, caplog: pytest.LogCaptureFixture
) -> None:
    """H.264 + Opus reach three decoding viewers; stalls and late joins behave; no codec work."""
    caplog.set_level(logging.WARNING)
    async with stage([h264_clip, opus_clip]) as st:
        assert st.session.relays["video"].codec == "video/H264"
        assert st.session.relays["audio"].codec == "audio/opus"
        await exercise(st, ("audio", "video"), caplog)
        audio = st.session.relays["audio"]
        # once per frame (the lean path skips frames published before a viewer started)
        assert audio.stats.frames_in > 100
        assert audio.stats.frames_in - 30 <= audio.stats.packetised <= audio.stats.frames_in


async def test_vp8_forwarded_to_viewers(
    vp8_clip: EncodedClip, caplog: pytest.LogCaptureFixture
) -> None:
    """VP8 goes through the same path with the same guarantees."""
    caplog.set_level(logging.WARNING)
    async with stage([vp8_clip]) as st:
        assert st.session.relays["video"].codec == "video/VP8"
        await exercise(st, ("video",), caplog)


async def test_keyframe_request_reaches_the_publisher(h264_clip: EncodedClip) -> None:
    """A relay keyframe request goes upstream as a PLI and the publisher answers with an IDR."""
    async with stage([h264_clip]) as st:
        viewer = await st.watch(("video",))
        await until(lambda: viewer.received["video"].frames > 5, 5.0)
        relay, source = st.session.relays["video"], st.source("video")
        keyframes, asked = relay.stats.keyframes_in, source.keyframe_requests
        await asyncio.sleep(1.0)  # past the rate limit of the join request
        assert relay.request_keyframe("test")
        await until(lambda: source.keyframe_requests > asked, 2.0)
        await until(lambda: relay.stats.keyframes_in > keyframes, 1.0)


async def test_viewer_without_the_publishers_codec_is_refused(h264_clip: EncodedClip) -> None:
    """A viewer that can only take VP8 gets a NegotiationError for an H.264 publisher."""
    async with stage([h264_clip]) as st:
        viewer = Viewer(("video",))
        viewer.pc.getTransceivers()[0].setCodecPreferences(codec_preferences("video", "video/VP8"))
        with pytest.raises(NegotiationError):
            await accept_viewer(st.session, await viewer.offer())
        assert st.session.relays["video"].subscribers == 0 and not st.session.viewers
        await viewer.close()


async def test_closing_the_publisher_closes_its_viewers(h264_clip: EncodedClip) -> None:
    """Closing a publisher ends its relays and closes every viewer session."""
    closed: list[str] = []
    pc, offer = await publisher_offer([h264_clip])
    answer, session = await accept_publisher(offer, on_close=lambda s: closed.append(s.id))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    viewer = Viewer(("video",))
    v_answer, v_session = await accept_viewer(
        session, await viewer.offer(), on_close=lambda s: closed.append(s.id)
    )
    await viewer.accept(v_answer)
    await session.close()
    await session.close()  # idempotent
    assert v_session.closed and session.relays["video"].closed
    assert sorted(closed) == sorted([session.id, v_session.id])
    too_late = Viewer(("video",))
    with pytest.raises(PublisherGone):
        await accept_viewer(session, await too_late.offer())
    for peer in (viewer, too_late):
        await peer.close()
    await pc.close()


async def test_offers_that_cannot_be_served_are_refused() -> None:
    """Garbage, data-only and receive-only publisher offers raise NegotiationError."""
    with pytest.raises(NegotiationError):
        await accept_publisher("not sdp")
    viewer = Viewer(("video",))
    with pytest.raises(NegotiationError, match="must send"):
        await accept_publisher(await viewer.offer())
    await viewer.close()


async def test_publisher_closing_while_a_viewer_is_answered(h264_clip: EncodedClip) -> None:
    """A viewer being answered when its publisher goes is told the publisher has gone
    (the endpoint answers 404 stream_not_found, not bad_sdp), with no leak."""
    async with stage([h264_clip]) as st:
        viewer = Viewer(("video",))
        answering = asyncio.ensure_future(accept_viewer(st.session, await viewer.offer()))
        await asyncio.sleep(0)
        await st.session.close()
        with pytest.raises(PublisherGone):
            await answering
        assert not st.session.viewers and st.session.relays["video"].subscribers == 0
        await viewer.close()


async def test_trickled_candidates_reach_the_ice_agent(h264_clip: EncodedClip) -> None:
    """Candidate-less offers, then their candidates trickled (RFC 8840 fragments): each
    candidate reaches the session's ICE agent as a host candidate, the publisher
    connects and a trickling viewer decodes frames; a fragment naming an unknown
    mid is refused before anything is added."""
    from media.aiortc_seams import ice as ice_seams
    from media.sdpfrag import FragmentError, parse_sdpfrag
    from tests.media.sources import trickled

    def remote(session: PublisherSession | ViewerSession) -> list[tuple[str, str]]:
        gatherer = session.pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
        return [(c.host, c.type) for c in ice_seams.ice_connection(gatherer).remote_candidates]

    pc, full_offer = await publisher_offer([h264_clip])
    offer, frag = trickled(full_offer)
    assert "a=candidate" not in offer
    answer, session = await accept_publisher(offer)
    viewer = Viewer(("video",))
    try:
        assert remote(session) == []
        with pytest.raises(FragmentError, match="mid"):  # nothing added
            await session.trickle(parse_sdpfrag(frag.replace("a=mid:0", "a=mid:9")))
        assert remote(session) == []
        many = "m=video 9 X 96\n" + "".join(
            f"a=candidate:{i} 1 udp 1 127.0.0.1 {2000 + i} typ host\n" for i in range(40)
        )
        await session.trickle(parse_sdpfrag(many))
        with pytest.raises(FragmentError, match="at most 64"):
            await session.trickle(parse_sdpfrag(many))  # 80 > MAX_TRICKLED: nothing added
        assert len(remote(session)) == 40
        await session.trickle(parse_sdpfrag(frag))
        assert ("127.0.0.1", "host") in remote(session)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await until(lambda: session.connection_state == "connected", 10.0)

        viewer_offer, viewer_frag = trickled(await viewer.offer())
        answer, watching = await accept_viewer(session, viewer_offer)
        await watching.trickle(parse_sdpfrag(viewer_frag))
        assert remote(watching) == [("127.0.0.1", "host")]
        await viewer.accept(answer)
        await until(lambda: viewer.received["video"].frames >= 5, 10.0)
    finally:
        await viewer.close()
        await session.close()
        await pc.close()
