"""The relay's contract, driven frame by frame without a network."""

from __future__ import annotations

import asyncio
import fractions
import itertools
from typing import TYPE_CHECKING

import av
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from livecore.clock import ManualClock
from media import metrics
from media.relay import Relay, RelayLimits, RelayTrack, SharedPacker
from tests.media.sources import EncodedClip

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

TB = fractions.Fraction(1, 90000)


def packet(pts: int, keyframe: bool = False, size: int = 100) -> EncodedPacket:
    p = av.Packet(bytes(size))
    p.pts, p.time_base, p.is_keyframe = pts, TB, keyframe
    return p


def make_relay(**limits: float) -> tuple[Relay, list[float], ManualClock]:
    clock = ManualClock()
    requests: list[float] = []
    relay = Relay(
        "video",
        "video/H264",
        request_keyframe=lambda: requests.append(clock.monotonic()),
        limits=RelayLimits(**limits),  # type: ignore[arg-type]
        clock=clock,
    )
    return relay, requests, clock


def feed(relay: Relay, count: int, gop: int, start: int = 0) -> None:
    """Publish ``count`` frames numbered from ``start``, a keyframe every ``gop``."""
    for n in range(start, start + count):
        relay.publish(packet(n * 3000, keyframe=n % gop == 0))


async def take(track: RelayTrack, count: int) -> list[EncodedPacket]:
    return [await asyncio.wait_for(track.recv(), 1.0) for _ in range(count)]


async def nothing(track: RelayTrack) -> bool:
    """True if the track has no frame for this viewer now."""
    try:
        await asyncio.wait_for(track.recv(), 0.02)
    except TimeoutError:
        return True
    return False


async def test_viewer_waits_for_a_keyframe_and_asks_for_one() -> None:
    """Without a cached keyframe a new viewer gets nothing until one arrives."""
    relay, requests, _ = make_relay()
    relay.publish(packet(0))
    track = relay.subscribe()
    assert requests == [0.0]
    relay.publish(packet(3000))
    assert await nothing(track)
    relay.publish(packet(6000, keyframe=True))
    relay.publish(packet(9000))
    got = await take(track, 2)
    assert [p.pts for p in got] == [6000, 9000] and got[0].is_keyframe
    assert track.first_frame_keyframe


async def test_join_starts_at_once_from_the_cached_gop() -> None:
    """A viewer joining mid-GOP gets the GOP from its keyframe, in order, immediately."""
    relay, requests, _ = make_relay()
    feed(relay, 45, gop=30)
    track = relay.subscribe()
    assert requests == []
    got = await take(track, 15)
    assert [(p.pts or 0) // 3000 for p in got] == list(range(30, 45))
    assert got[0].is_keyframe
    assert await nothing(track)


async def test_stalled_viewer_holds_no_memory_and_resumes_on_a_keyframe() -> None:
    """A viewer that stops reading costs nothing; on return it restarts at a keyframe."""
    limits = RelayLimits(max_lag_frames=8, max_gop_frames=300)
    relay, _, _ = make_relay(max_lag_frames=8, max_gop_frames=300)
    stalled, live = relay.subscribe(), relay.subscribe()
    feed(relay, 1, gop=30)
    await take(stalled, 1)
    await take(live, 1)
    high_water = 0
    for n in range(1, 3000):
        feed(relay, 1, gop=30, start=n)
        assert (await take(live, 1))[0].pts == n * 3000
        high_water = max(high_water, relay.buffered_frames)
    assert high_water <= 30 + limits.max_lag_frames
    resumed = await take(stalled, 1)
    assert resumed[0].is_keyframe and resumed[0].pts == 2970 * 3000
    assert stalled.skips == 1 and live.skips == 0


async def test_slow_viewer_skips_to_the_next_keyframe() -> None:
    """Past max_lag_frames behind, a viewer drops to the next keyframe, pts still rising."""
    relay, requests, _ = make_relay(max_lag_frames=4)
    track = relay.subscribe()
    feed(relay, 1, gop=100)
    first = await take(track, 1)
    feed(relay, 10, gop=100, start=1)  # 10 behind: over the limit
    assert await nothing(track)
    assert track.skips == 1 and requests == [0.0]
    feed(relay, 89, gop=100, start=11)
    assert await nothing(track)
    feed(relay, 2, gop=100, start=100)
    got = await take(track, 2)
    assert [(p.pts or 0) // 3000 for p in got] == [100, 101] and got[0].is_keyframe
    assert (got[0].pts or 0) > (first[0].pts or 0)


async def test_lagging_viewer_jumps_to_a_newer_cached_keyframe() -> None:
    """If a keyframe newer than its position is cached, the skip lands there at once."""
    relay, _, _ = make_relay(max_lag_frames=4)
    track = relay.subscribe()
    feed(relay, 2, gop=10)
    await take(track, 1)
    feed(relay, 18, gop=10, start=2)
    got = await take(track, 1)
    assert got[0].pts == 10 * 3000 and got[0].is_keyframe
    assert relay.stats.request_reasons == {"join": 1}


async def test_pts_strictly_increase_when_the_source_goes_back() -> None:
    """A source restarting its timestamps is rebased once, for every viewer."""
    relay, _, _ = make_relay()
    track = relay.subscribe()
    got = []
    for pts, key in [(0, True), (3000, False), (6000, False), (0, True), (3000, False)]:
        relay.publish(packet(pts, key))
        got += [p.pts for p in await take(track, 1)]
    assert got == [0, 3000, 6000, 9000, 12000]
    assert relay.stats.pts_rebases == 1


async def test_a_jump_no_live_source_makes_is_numbered_on() -> None:
    """A late frame taken for an RTP timestamp wrap (+2^32 - a little) or a simulcast
    layer's new SSRC (a random base) is numbered on from the last frame, and the frames
    after it follow on from there: nothing downstream sees hours between two frames."""
    relay, _, _ = make_relay()
    track = relay.subscribe()
    got = []
    wrap = 2**32 - 3000
    for pts, key in [(0, True), (3000, False), (6000 + wrap, False), (9000 + wrap, False),
                     (12000 + wrap, True)]:  # fmt: skip
        relay.publish(packet(pts, key))
        got += [p.pts for p in await take(track, 1)]
    assert got == [0, 3000, 6000, 9000, 12000]
    assert relay.stats.pts_rebases == 1


async def test_gop_longer_than_the_cap_is_not_cached() -> None:
    """A GOP past max_gop_frames is dropped from memory; joiners wait and ask."""
    relay, requests, _ = make_relay(max_gop_frames=20, max_lag_frames=4)
    feed(relay, 50, gop=1000)
    assert not relay.has_keyframe and relay.buffered_frames == 5
    track = relay.subscribe()
    assert requests == [0.0]
    assert await nothing(track)


async def test_keyframe_requests_are_rate_limited() -> None:
    """Many joins and viewer PLIs within a second make one request upstream."""
    relay, requests, clock = make_relay()
    tracks = [relay.subscribe() for _ in range(5)]
    for track in tracks:
        track.request_keyframe()
    assert requests == [0.0]
    clock.advance(1.0)
    relay.publish(packet(0))
    assert requests == [0.0, 1.0]
    relay.publish(packet(3000, keyframe=True))
    clock.advance(5.0)
    relay.publish(packet(6000))
    assert requests == [0.0, 1.0]
    assert relay.stats.request_reasons == {"join": 5, "viewer": 5}


async def test_audio_viewer_that_lags_jumps_to_the_newest_frame() -> None:
    """Every audio frame is a start point, so a lagging audio viewer just drops the backlog."""
    relay = Relay("audio", "audio/opus", limits=RelayLimits(max_lag_frames=4))
    track = relay.subscribe()
    for n in range(20):
        relay.publish(packet(n * 960))
    got = await take(track, 1)
    assert got[0].pts == 19 * 960 and track.skips == 0


async def test_close_ends_every_viewer() -> None:
    """Closing the relay makes recv raise and refuses new viewers."""
    relay, _, _ = make_relay()
    track = relay.subscribe()
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    relay.close()
    with pytest.raises(MediaStreamError):
        await waiting
    assert track.readyState == "ended" and relay.subscribers == 0
    with pytest.raises(MediaStreamError):
        relay.subscribe()


async def test_stopped_viewer_unsubscribes() -> None:
    """A stopped track leaves the relay and its recv raises."""
    relay, _, _ = make_relay()
    track = relay.subscribe()
    track.stop()
    assert relay.subscribers == 0
    with pytest.raises(MediaStreamError):
        await track.recv()


class _ListTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, items: list[object]) -> None:
        super().__init__()
        self.items = items

    async def recv(self) -> object:  # type: ignore[override]
        if not self.items:
            raise MediaStreamError
        return self.items.pop(0)


async def test_pump_refuses_decoded_frames_and_counts_them() -> None:
    """A decoded frame reaching the relay means codec work happened: it is counted."""
    relay, _, _ = make_relay()
    items: list[object] = [packet(0, True), av.VideoFrame(16, 16, "yuv420p"), packet(3000)]
    relay.subscribe()
    await relay.start(_ListTrack(items))
    assert relay.closed and relay.stats.frames_in == 2
    assert metrics.codec_ops.by_reason() == {"decode:video/H264": 1}


async def test_payloads_are_computed_once_for_all_viewers(h264_clip: EncodedClip) -> None:
    """Three viewers' packers share one packetisation per frame."""
    relay = Relay("video", "video/H264")
    tracks = [relay.subscribe() for _ in range(3)]
    packers = [SharedPacker(t) for t in tracks]
    for n, (data, key) in enumerate(h264_clip.frames[:30]):
        p = av.Packet(data)
        p.pts, p.time_base, p.is_keyframe = n * 3000, TB, key
        relay.publish(p)
    outputs = []
    for track, packer in zip(tracks, packers, strict=True):
        # As RTCRtpSender does: pack each packet right after recv() returned it.
        outputs.append([packer.pack((await take(track, 1))[0]) for _ in range(30)])
    assert relay.stats.packetised == 30
    assert all(a is b for a, b in zip(outputs[0], outputs[1], strict=True))
    assert outputs[0][1][1] == 3000 and len(outputs[0][0][0]) > 1
    assert metrics.codec_ops.value == 0


async def test_vp8_picture_ids_follow_the_frame_sequence(vp8_clip: EncodedClip) -> None:
    """A viewer that skipped frames still sees increasing VP8 picture ids."""
    relay = Relay("video", "video/VP8", limits=RelayLimits(max_lag_frames=2))
    track = relay.subscribe()
    packer = SharedPacker(track)
    ids = []
    for n, (data, key) in enumerate(vp8_clip.frames[:70]):
        p = av.Packet(data)
        p.pts, p.time_base, p.is_keyframe = n * 3000, TB, key
        relay.publish(p)
        if n < 3 or n >= 60:
            payloads, _ = packer.pack((await take(track, 1))[0])
            ids.append(int.from_bytes(payloads[0][2:4], "big") & 0x7FFF)
    steps = [(b - a) % (1 << 15) for a, b in itertools.pairwise(ids)]
    assert steps == [1, 1, 58] + [1] * 9


async def test_encode_on_a_relayed_sender_is_counted(h264_clip: EncodedClip) -> None:
    """SharedPacker.encode (a decoded frame given to a viewer) increments codec_ops."""
    relay = Relay("video", "video/H264")
    packer = SharedPacker(relay.subscribe())
    frame = av.VideoFrame(64, 64, "yuv420p")
    frame.pts, frame.time_base = 0, TB
    await asyncio.get_running_loop().run_in_executor(None, packer.encode, frame, False)
    assert metrics.codec_ops.by_reason() == {"encode:video/H264": 1}


async def test_catching_up_yields_to_other_viewers() -> None:
    """A viewer taking a long cached GOP lets the loop run every fair_burst frames."""
    relay, _, _ = make_relay(fair_burst=4)
    feed(relay, 40, gop=100)
    track = relay.subscribe()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    before = ticks
    await take(track, 40)
    task.cancel()
    assert ticks - before >= 40 // 4 - 1
