"""A live's replay across its streams, on the recording plane with real aiortc peers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import av
import redis.asyncio
from aiortc import RTCSessionDescription

from livecore.clock import SystemClock
from livecore.config import Settings
from media.recorder import Recording
from media.sessions import accept_publisher
from signalling.node.context import NodeContext
from signalling.node.metrics import Metrics
from signalling.services.recording import RecordingPlane
from tests.helpers import TEST_SECRET
from tests.media.sources import encode_opus_clip, encode_video_clip, publisher_offer
from tests.waiting import eventually


async def record_a_stream(plane: RecordingPlane) -> Recording:
    """One host stream of room r1, recorded until it has two segments, then ended."""
    clips = [encode_video_clip("video/H264", frames=150, gop=30), encode_opus_clip(5.0)]
    pc, offer = await publisher_offer(clips)
    answer, session = await accept_publisher(offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    try:
        plane.stream_started("r1", session)
        recording = plane.recording("r1")
        assert recording is not None
        await eventually(lambda: recording.stats.segments >= 2, within=20, what="two segments")
        await session.close()  # the host's page goes: the stream ends
        await eventually(lambda: plane.recording("r1") is None, within=10, what="its end")
    finally:
        await session.close()
        await pc.close()
    return recording


async def test_a_stream_ended_while_the_last_replay_is_remuxed_extends_it(
    tmp_path: Path, aredis: redis.asyncio.Redis
) -> None:
    """The host's page reloads while the remux lane is busy: the first stream's replay
    is still waiting for the lane when the second stream ends. The room's replay holds
    both streams, not the second alone."""
    settings = Settings(media_dir=tmp_path / "media", record_segment_s=1.0)
    ctx = NodeContext(settings=settings, secret=TEST_SECRET.encode(), clock=SystemClock(),
                      redis=aredis, metrics=Metrics("t"), started_at=0.0)  # fmt: skip
    plane = RecordingPlane(ctx)
    plane.start()
    release = threading.Event()
    busy = asyncio.ensure_future(plane.remux.run(release.wait, 60.0))  # a long remux
    try:
        first = await record_a_stream(plane)
        second = await record_a_stream(plane)  # the first one's replay waits for the lane
        release.set()
        await busy
        replay = plane.media.replay_path("r1")

        def duration() -> float:
            if plane.remux.pending or not replay.exists():
                return 0.0
            with av.open(str(replay)) as f:
                return float(f.duration or 0) / 1e6

        both = first.recorded_until + second.recorded_until
        await eventually(lambda: duration() >= both - 1.0, within=20,
                         what=f"a replay of both streams ({both:.1f} s)")  # fmt: skip
    finally:
        release.set()
        await plane.stop()
