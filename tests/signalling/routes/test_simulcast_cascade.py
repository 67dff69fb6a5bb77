"""A simulcast host publishes to node A; viewers at node B each get the layer their own
link carries (B's copy pulls every layer from A, media/cascade.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci

from tests.helpers import Node, create_room
from tests.media.simulsource import Layer, SimulcastPublisher
from tests.media.sources import EncodedClip, Viewer
from tests.media.test_ridemux import SIZES, layer_clips  # noqa: F401 - the clips fixture
from tests.signalling.routes.test_whip import until_live, watch, whip
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(120)


class Remb:
    """Writes a viewer's REMB instead of its own estimator (which loopback would put high)."""

    def __init__(self, viewer: Viewer) -> None:
        self.receiver: RTCRtpReceiver = next(
            t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video"
        )
        self.receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
        self.ssrc: int | None = None
        handle = self.receiver._handle_rtp_packet

        async def seen(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.ssrc = packet.ssrc
            await handle(packet, arrival_time_ms)

        self.receiver._handle_rtp_packet = seen  # type: ignore[method-assign]

    async def send(self, bps: int) -> None:
        assert self.ssrc is not None
        fci = pack_remb_fci(bps, [self.ssrc])
        await self.receiver._send_rtcp(
            RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=fci)
        )


# alone: which layer a viewer starts on and when it moves follow the layers' measured rates
# and its estimate in real time; a busy CI run gave the far viewer a few 90p frames
@pytest.mark.alone
async def test_viewers_at_another_node_get_the_layer_their_link_carries(
    tmp_path: Path,
    redis_url: str,
    layer_clips: dict[str, EncodedClip],  # noqa: F811
) -> None:
    """Three layers to A; two viewers at B: one whose estimate stays high keeps the
    best layer B's selector allows it, one whose estimate falls moves down to the
    smallest picture, and A holds one pull (three video sections) for both."""
    a = Node(tmp_path / "a", redis_url=redis_url).start()
    b = Node(tmp_path / "b", redis_url=redis_url).start()
    publisher = SimulcastPublisher([Layer(rid, clip) for rid, clip in layer_clips.items()])
    viewers: list[Viewer] = []
    try:
        create_room(a.url)
        answer = await whip(a, await publisher.offer(), "host", "host1")
        assert answer.status_code == 201, answer.text
        await publisher.accept(answer.text)
        await until_live(a)
        (steady, _), (falling, _) = await watch(b, "v1"), await watch(b, "v2")
        viewers += [steady, falling]
        remb = Remb(falling)
        await eventually(lambda: falling.received["video"].frames > 10, within=15.0)
        await eventually(lambda: remb.ssrc is not None, within=5.0)
        for bps in (2_000_000, 150_000):
            await remb.send(bps)
        await eventually(
            lambda: SIZES["l"] in falling.received["video"].sizes, within=10.0, what="180p at B"
        )
        assert SIZES["l"] not in steady.received["video"].sizes
        frames = steady.received["video"].frames
        await eventually(lambda: steady.received["video"].frames > frames + 30, within=5.0)
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.close()
        b.stop()
        a.stop()
