"""Per-viewer simulcast layers end to end over loopback: an aiortc publisher sends three rids,
aiortc viewers decode what the lean forwarder picked for each from its own REMB."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtpPacket,
    pack_remb_fci,
)

from media import metrics
from media.cascade import pull
from media.layerforward import SETTLE_S, LayeredForwarder
from media.sessions import PublisherSession, ViewerSession, accept_publisher, accept_viewer
from tests.media.simulsource import Layer, SimulcastPublisher
from tests.media.sources import EncodedClip, Viewer
from tests.media.test_ridemux import SIZES, layer_clips  # noqa: F401 - the session fixture
from tests.media.test_sessions import decode_failures
from tests.waiting import eventually


@dataclass
class Watcher:
    """An aiortc viewer whose REMB the test writes, and the RTP (seq, ts, size) it got."""

    viewer: Viewer
    session: ViewerSession
    rtp: list[tuple[int, int]] = field(default_factory=list)
    ssrc: int | None = None

    @property
    def receiver(self) -> RTCRtpReceiver:
        return next(t.receiver for t in self.viewer.pc.getTransceivers() if t.kind == "video")

    def tap(self) -> None:
        """Record every video RTP packet; silence the receiver's own REMB estimator."""
        receiver = self.receiver
        receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
        handle = receiver._handle_rtp_packet

        async def recorded(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.ssrc = packet.ssrc
            self.rtp.append((packet.sequence_number, packet.timestamp))
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = recorded  # type: ignore[method-assign]

    async def remb(self, bps: int) -> None:
        assert self.ssrc is not None
        fci = pack_remb_fci(bps, [self.ssrc])
        await self.receiver._send_rtcp(
            RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=fci)
        )

    async def pli(self) -> None:
        assert self.ssrc is not None
        await self.receiver._send_rtcp(
            RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=self.ssrc)
        )

    async def nack(self, seqs: list[int]) -> None:
        assert self.ssrc is not None
        await self.receiver._send_rtcp(
            RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=self.ssrc, lost=seqs)
        )

    @property
    def sizes(self) -> set[tuple[int, int]]:
        return self.viewer.received["video"].sizes


@dataclass
class Room:
    publisher: SimulcastPublisher
    session: PublisherSession
    watchers: list[Watcher] = field(default_factory=list)

    @property
    def forwarder(self) -> LayeredForwarder:
        forwarder = self.session.forwarders["video"]
        assert isinstance(forwarder, LayeredForwarder)
        return forwarder

    async def watch(self, *, pull: bool = False, of: PublisherSession | None = None) -> Watcher:
        viewer = Viewer(("video",))
        offer = await viewer.offer()
        answer, session = await accept_viewer(of or self.session, offer, pull=pull)
        watcher = Watcher(viewer, session)
        watcher.tap()
        await viewer.accept(answer)
        self.watchers.append(watcher)
        await eventually(lambda: watcher.viewer.received["video"].frames > 0, within=10.0)
        return watcher

    def layer(self, watcher: Watcher) -> str | None:
        forwarder = watcher.session.publisher.forwarders["video"]
        assert isinstance(forwarder, LayeredForwarder)
        return forwarder.layer_of(watcher.session.lean[0])


@pytest.fixture
async def room(layer_clips: dict[str, EncodedClip]) -> AsyncIterator[Room]:  # noqa: F811
    publisher = SimulcastPublisher([Layer(rid, clip) for rid, clip in layer_clips.items()])
    answer, session = await accept_publisher(await publisher.offer())
    await publisher.accept(answer)
    room = Room(publisher, session)
    await eventually(lambda: all(r.head >= 30 for r in session.layers.values()), within=10.0)
    try:
        yield room
    finally:
        await session.close()
        await publisher.close()
        for watcher in room.watchers:
            await watcher.viewer.close()


def assert_continuous(rtp: list[tuple[int, int]]) -> None:
    """Sequence numbers step by one; timestamps never go back nor jump more than 0.2 s."""
    for (seq, ts), (next_seq, next_ts) in itertools.pairwise(rtp):
        assert (next_seq - seq) & 0xFFFF == 1, (seq, next_seq)
        step = (next_ts - ts) & 0xFFFFFFFF
        assert step < 0.2 * 90_000, (ts, next_ts)


async def test_viewers_get_the_layer_their_estimate_carries(
    room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    """Without an estimate a viewer starts on the best layer under 1 Mbit/s; a viewer whose
    REMB falls moves down on that layer's keyframe, numbered on; the top layer unwatched
    (but the first) is paused."""
    steady, falling = await room.watch(), await room.watch()
    assert room.layer(steady) == room.layer(falling) == "m"
    await eventually(lambda: SIZES["m"] in falling.sizes, within=5.0)
    await eventually(lambda: room.session.layers["l"].paused, within=2.0, what="l paused")
    requests = room.publisher.layers[2].plis
    await falling.remb(2_000_000)
    await falling.remb(150_000)

    await eventually(lambda: room.layer(falling) == "l", within=3.0, what="switch down")
    await eventually(lambda: SIZES["l"] in falling.sizes, within=3.0)
    assert room.publisher.layers[2].plis > requests  # asked of the l layer
    assert room.layer(steady) == "m" and steady.sizes == {SIZES["m"]}
    frames = falling.viewer.received["video"].frames
    await eventually(lambda: falling.viewer.received["video"].frames > frames + 15, within=3.0)
    assert_continuous(falling.rtp)
    assert_continuous(steady.rtp)
    assert decode_failures(caplog) == []  # the switch landed on a keyframe
    assert not room.session.layers["l"].paused
    assert not room.session.layers["h"].paused  # the first layer never is: the recorder reads it
    assert metrics.codec_ops.value == 0


async def test_a_viewer_pli_is_served_from_the_layer_gop(room: Room) -> None:
    """A PLI is answered from the layer's cached GOP; the publisher is not asked."""
    watcher = await room.watch()
    await eventually(lambda: room.session.layers["m"].has_keyframe, within=5.0)
    plis = [x.plis for x in room.publisher.layers]
    await watcher.pli()
    await eventually(lambda: room.forwarder.gop_served == 1, within=3.0)
    assert [x.plis for x in room.publisher.layers] == plis


async def test_a_pli_after_the_publisher_went_quiet_asks_the_publisher(room: Room) -> None:
    """After an outage of the publisher the layer's cached GOP is stale: a PLI then asks
    the publisher (sent with the layer's first packet back, to its SSRC) and replays
    nothing; the fresh key frame reaches the viewer."""
    watcher = await room.watch()
    layer = room.publisher.layers[1]
    assert room.layer(watcher) == layer.rid == "m"
    for each in room.publisher.layers:
        each.silent = True
    await eventually(lambda: room.forwarder.quiet("m"), within=3.0, what="m quiet")
    plis, requests = layer.plis, room.session.layers["m"].stats.keyframe_requests
    await watcher.pli()
    await eventually(
        lambda: room.session.layers["m"].stats.keyframe_requests > requests,
        within=3.0,
        what="a key frame asked of the layer",
    )
    frames = watcher.viewer.received["video"].frames
    for each in room.publisher.layers:
        each.silent = False
    await eventually(lambda: layer.plis > plis, within=3.0, what="the PLI reaches the publisher")
    await eventually(lambda: watcher.viewer.received["video"].frames > frames, within=3.0)
    assert room.forwarder.gop_served == 0


async def test_a_cascade_pull_stays_on_the_first_layer(room: Room) -> None:
    """A pull for another node from a viewer that offers one video section gets the
    first layer whatever its REMB says: the other node's viewers choose there."""
    pull = await room.watch(pull=True)
    assert room.layer(pull) == "h"
    await pull.remb(2_000_000)
    await pull.remb(150_000)
    frames = pull.viewer.received["video"].frames
    await eventually(lambda: pull.viewer.received["video"].frames > frames + 30, within=5.0)
    assert room.layer(pull) == "h" and pull.sizes == {SIZES["h"]}


async def test_a_cascade_copies_every_layer_and_its_viewers_choose_there(room: Room) -> None:
    """Another node's pull (``media.cascade.pull``) gets every layer, one video section
    each, pinned at the origin; the copy has them as its own layers (``p0`` the top) and
    a viewer of the copy whose estimate falls moves down there, to the smallest."""
    pulls: list[ViewerSession] = []

    async def exchange(offer: str) -> str:
        answer, session = await accept_viewer(room.session, offer, pull=True)
        pulls.append(session)
        return answer

    copy = await pull(exchange, name="copy")
    try:
        assert list(copy.layers) == ["p0", "p1", "p2"] and copy.relays["video"] is copy.layers["p0"]
        origin = room.forwarder
        await eventually(lambda: all(r.head >= 30 for r in copy.layers.values()), within=10.0)
        assert [origin.layer_of(lean) for lean in pulls[0].lean] == ["h", "m", "l"]
        watcher = await room.watch(of=copy)
        await watcher.remb(2_000_000)
        await watcher.remb(150_000)
        await eventually(lambda: room.layer(watcher) == "p2", within=10.0, what="down at the copy")
        await eventually(lambda: SIZES["l"] in watcher.sizes, within=5.0)
        assert [origin.layer_of(lean) for lean in pulls[0].lean] == ["h", "m", "l"]
    finally:
        await copy.close()


async def test_layers_rank_by_picture_not_by_their_rate_now(room: Room) -> None:
    """The top layer's rate below the others' (its publisher's estimate still ramping):
    it is still the top layer, so a viewer sent "down" never lands on the largest picture."""
    await room.watch()
    forwarder = room.forwarder
    forwarder.rates.update({"h": 90_000.0, "m": 300_000.0, "l": 140_000.0})
    assert forwarder.ranked() == ["l", "m", "h"]


async def test_a_probe_pads_the_viewer_and_a_flat_estimate_keeps_it_where_it_is(
    room: Room,
) -> None:
    """A viewer on the low layer whose estimate stays flat is padded (copies of its own
    packets, as RTX) while its link is probed for the next layer; the estimate did not
    grow, so it stays on its layer and the layers' measured rates are not inflated."""
    watcher = await room.watch()
    await watcher.remb(2_000_000)
    await watcher.remb(150_000)
    await eventually(lambda: room.layer(watcher) == "l", within=3.0, what="down to l")
    forwarder = room.forwarder
    selector = forwarder.state[watcher.session.lean[0]].selector
    rates = dict(forwarder.rates)
    await eventually(lambda: forwarder.padded > 0, within=6.0, what="padding")
    assert room.layer(watcher) == "l"
    await eventually(lambda: selector.probes_failed > 0, within=4.0, what="the probe judged")
    assert room.layer(watcher) == "l" and selector.switches_up == 0
    assert forwarder.rates["l"] < 2 * rates["l"]


async def test_no_resend_of_the_layer_a_viewer_left(room: Room) -> None:
    """After a move down, a NACK for a packet of the layer left behind is not answered
    (the keyframe it moved on makes it useless, and a shrunken link has no room for a
    queue of them); one for a packet after the move is."""
    watcher = await room.watch()
    await watcher.remb(2_000_000)
    await eventually(lambda: len(watcher.rtp) > 10, within=3.0)
    before = watcher.rtp[-1][0]
    await watcher.remb(150_000)
    await eventually(lambda: room.layer(watcher) == "l", within=3.0, what="down to l")
    count = len(watcher.rtp)
    await eventually(lambda: len(watcher.rtp) > count + 5, within=3.0)
    after = watcher.rtp[-1][0]
    forwarder, lean = room.forwarder, watcher.session.lean[0]
    resent = forwarder.resent
    await watcher.nack([before])
    await eventually(lambda: lean.nacks >= 1, within=3.0, what="the NACK arrives")
    assert forwarder.resent == resent
    await watcher.nack([after])
    await eventually(lambda: forwarder.resent == resent + 1, within=3.0, what="resent")


async def test_resends_to_a_viewer_stay_under_half_its_estimate(room: Room) -> None:
    """A NACK for 60 packets from a viewer estimated at 150 kbit/s: resent only up to
    half of what its estimate carries in a report round (~4.7 kB), not all of them."""
    watcher = await room.watch()
    await watcher.remb(2_000_000)
    await watcher.remb(150_000)
    await eventually(lambda: room.layer(watcher) == "l", within=3.0, what="down to l")
    count = len(watcher.rtp)
    await eventually(lambda: len(watcher.rtp) > count + 70, within=10.0)
    last = watcher.rtp[-1][0]
    resent = room.forwarder.resent
    await watcher.nack([(last - back) & 0xFFFF for back in range(60, 0, -1)])
    await eventually(lambda: room.forwarder.resent > resent, within=3.0, what="resent")
    assert room.forwarder.resent - resent < 60


async def test_a_layer_just_resumed_is_not_one_to_move_up_to(room: Room) -> None:
    """A layer sent again for less than ``SETTLE_S`` (and every one above it) does not
    count above a viewer's layer; below it, and once settled, it does."""
    await room.watch()
    forwarder = room.forwarder
    now = forwarder.relay.clock.time()
    ranked, rates = ["l", "m", "h"], [1.0, 2.0, 3.0]
    forwarder._sent_since.update(dict.fromkeys(ranked, now - SETTLE_S))
    assert forwarder._settled(ranked, rates, 0, now) == rates
    forwarder._sent_since["m"] = now
    assert forwarder._settled(ranked, rates, 0, now) == [1.0, 0.0, 0.0]
    assert forwarder._settled(ranked, rates, 1, now) == rates  # on it already
    assert forwarder._settled(ranked, rates, 0, now + SETTLE_S) == rates
