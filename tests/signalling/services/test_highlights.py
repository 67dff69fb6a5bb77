"""Highlights from every node's audience on a real recording: people → a burst → a clip.

In process: a real aiortc publisher, the pass-through session, the recording
plane of node A on the real Valkey, and the engagement counters of nodes A
and B (each a ``NodeContext`` of its own on the same Valkey): the audience
is on node B, the recording on node A. The detector's parameters are
shortened so a burst is found within seconds (its rules are unit-tested in
tests/livecore).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import msgpack
import pytest
import redis.asyncio
from aiortc import RTCSessionDescription

from livecore.clock import SystemClock
from livecore.config import Settings
from livecore.highlights import DetectorParams
from media.sessions import accept_publisher
from signalling.node.context import NodeContext
from signalling.node.metrics import Metrics
from signalling.services.engagement import Engagement
from signalling.services.recording import RecordingPlane
from tests.helpers import TEST_SECRET
from tests.media.sources import encode_opus_clip, encode_video_clip, publisher_offer

FAST = DetectorParams(
    baseline_s=5, warmup_s=1, quiet_s=1, reaction_delay_s=1, lead_s=1, tail_s=1, min_len_s=3
)


def node(tmp_path: Path, aredis: redis.asyncio.Redis, name: str, scale: float) -> NodeContext:
    settings = Settings(media_dir=tmp_path / name, record_segment_s=1.0, node_id=name,
                        highlight_time_scale=scale)  # fmt: skip
    return NodeContext(settings=settings, secret=TEST_SECRET.encode(), clock=SystemClock(),
                       redis=aredis, metrics=Metrics(name), started_at=0.0)  # fmt: skip


async def until(check: Callable[[], object], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


# alone: its audience bursts on the wall clock (0.2 s steps); a busy machine stretched them.
@pytest.mark.alone
@pytest.mark.parametrize("scale", [1.0, 4.0])
async def test_another_nodes_audience_becomes_a_clip(
    tmp_path: Path, aredis: redis.asyncio.Redis, scale: float
) -> None:
    """Node B's viewers burst, node A records: A reads B's people, decides the burst, cuts it
    from its segments and announces it; B's host pin names its product; with a time scale
    X a bucket is 1/X s and the clip is cut at its window ÷ X."""
    a, b = node(tmp_path, aredis, "a", scale), node(tmp_path, aredis, "b", scale)
    plane = RecordingPlane(a)
    plane.detector_params = FAST
    plane.start()
    counted = Engagement(b)
    counted.start()
    announced: list[tuple[str, dict[str, Any]]] = []
    plane.on_clip_ready = lambda room, payload: announced.append((room, payload))
    clips = [encode_video_clip("video/H264", frames=150, gop=30), encode_opus_clip(5.0)]
    pc, offer = await publisher_offer(clips)
    answer, session = await accept_publisher(offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    try:
        assert await counted.mark("r1") is None  # not recorded yet: refused, nothing written
        card = msgpack.packb({"kind": "product", "name": "早鸟礼盒", "price_cents": 990})
        await b.stores.bus.set_state("r1", "card:product", card, msgpack.packb({"t": "card"}))
        plane.stream_started("r1", session)
        svc = plane.highlights("r1")
        assert svc is not None and plane.highlights("other") is None
        await until(lambda: svc.lease is not None)
        # The card pinned before going live is the product from the stream's start.
        await until(lambda: svc.detector.product == "早鸟礼盒")
        deadline = time.monotonic() + 20
        i = 0
        while (svc.now() or 0) < 3:  # a calm audience: one or two people a second
            counted.signal("r1", "comment", f"calm{i % 3}")
            i += 1
            assert time.monotonic() < deadline
            await asyncio.sleep(0.5)
        await counted.product_pinned("r1", "水蜜桃")
        for step in range(10):  # 2 s of a burst: 8 people comment, 20 like, each tick
            for n in range(8):
                counted.signal("r1", "comment", f"v{step}-{n}")
            for n in range(20):
                counted.signal("r1", "like", f"w{step}-{n}", 50)
            await asyncio.sleep(0.2)
        await until(lambda: any(p["clip"]["kind"] == "burst" for _, p in announced), 40)
        marked = await counted.mark("r1")
        assert marked is not None and abs(marked - svc.now()) < 0.5  # type: ignore[operator]
    finally:
        await counted.stop()
        await session.close()
        await pc.close()
        await plane.stop()
    room, payload = next((r, p) for r, p in announced if p["clip"]["kind"] == "burst")
    clip = payload["clip"]
    assert room == "r1" and payload["t"] == "clip_ready"
    assert clip["kind"] == "burst" and clip["product"] == "水蜜桃"
    assert clip["reason"]["signals"]["comment"] >= 40 and clip["reason"]["score"] >= FAST.high
    assert clip["reason"]["signals"]["like"] <= 300  # people, not 50 taps each
    start, end = clip["reason"]["window"]
    assert end - start >= FAST.min_len_s / scale - 0.01
    assert clip["start"] <= start + 0.01 and clip["duration"] >= end - start - 0.1
    assert clip["reason"].get("time_scale", 1) == scale
    registry = a.metrics.registry
    assert (registry.get_sample_value("livecore_clip_media_seconds_total") or 0) >= end - start
    assert (registry.get_sample_value("livecore_clip_cut_seconds_total") or 0) > 0
    stored = await plane.clips.list("r1")
    assert [c.public() for c in stored][-1]["id"] in {p["clip"]["id"] for _, p in announced}
    hexid = clip["id"].split("~")[1]
    mp4 = plane.media.clip_path("r1", hexid, "mp4")
    with av.open(str(mp4)) as f:
        first = next(p for p in f.demux(f.streams.video[0]) if p.pts is not None)
        assert first.is_keyframe and first.pts == 0
    assert plane.media.clip_path("r1", hexid, "jpg").is_file()


async def test_a_clip_is_cut_while_a_long_remux_runs(
    tmp_path: Path, aredis: redis.asyncio.Redis
) -> None:
    """Clip cuts have their own lane: a host's mark is cut and announced while a long
    job (a replay remux) holds the remux lane."""
    settings = Settings(media_dir=tmp_path / "media", record_segment_s=1.0)
    ctx = NodeContext(settings=settings, secret=TEST_SECRET.encode(), clock=SystemClock(),
                      redis=aredis, metrics=Metrics("t"), started_at=0.0)  # fmt: skip
    plane = RecordingPlane(ctx)
    plane.detector_params = FAST
    plane.start()
    host = Engagement(ctx)  # the host's mark reaches the recording node as from any node
    host.start()
    announced: list[dict[str, Any]] = []
    plane.on_clip_ready = lambda room, payload: announced.append(payload)
    clips = [encode_video_clip("video/H264", frames=150, gop=30), encode_opus_clip(5.0)]
    pc, offer = await publisher_offer(clips)
    answer, session = await accept_publisher(offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    release = threading.Event()
    long_job = asyncio.ensure_future(plane.remux.run(release.wait, 60.0))
    try:
        plane.stream_started("r1", session)
        svc = plane.highlights("r1")
        assert svc is not None
        await until(lambda: svc.lease is not None)
        deadline = time.monotonic() + 20
        while svc.now() is None or svc.now() < 3:  # type: ignore[operator]
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert await host.mark("r1") is not None
        while not announced:
            assert time.monotonic() < deadline + 20, "the clip waited behind the remux"
            await asyncio.sleep(0.2)
        assert not long_job.done() and plane.remux.pending >= 1
    finally:
        release.set()
        await long_job
        await host.stop()
        await session.close()
        await pc.close()
        await plane.stop()
    assert announced[0]["clip"]["kind"] == "mark"
