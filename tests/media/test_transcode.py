"""VP8 → H.264 for the recording, with real codecs (libvpx frames in, libx264 frames out)."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest

from media.container import h264_dimensions, h264_parameter_sets
from media.transcode import TranscodeConfig, Vp8ToH264, output_size
from tests.media.sources import EncodedClip, encode_video_clip
from tests.waiting import eventually


@pytest.fixture(scope="module")
def vp8() -> EncodedClip:
    return encode_video_clip("video/VP8", frames=90, gop=60, size=(320, 240))


def packets(clip: EncodedClip, start: int = 0) -> list[Any]:
    out = []
    for i, (data, key) in enumerate(clip.frames):
        packet = av.Packet(data)
        packet.pts = start + i * clip.step
        packet.time_base = clip.time_base
        packet.is_keyframe = key
        out.append(packet)
    return out


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[Any, float]] = []
        self.keyframe_requests = 0

    def __call__(self, packet: Any, arrived: float) -> None:
        self.got.append((packet, arrived))

    def request(self) -> None:
        self.keyframe_requests += 1


def test_the_recorded_size_is_even_and_at_most_720_lines() -> None:
    """A 1080p source is scaled to 720 lines; odd sizes are made even."""
    assert output_size(1920, 1080, 720) == (1280, 720)
    assert output_size(641, 481, 720) == (640, 480)
    assert output_size(480, 640, 720) == (480, 640)


async def test_vp8_becomes_baseline_h264_with_an_idr_every_segment(vp8: EncodedClip) -> None:
    """Every VP8 frame comes out as one H.264 frame, Annex-B, with SPS/PPS on each IDR,
    an IDR every ``keyframe_s`` of stream time, the source's size, arrival times kept;
    a smaller second part (the browser lowered its resolution) keeps the first size."""
    sink = Sink()
    loop = asyncio.get_running_loop()
    config = TranscodeConfig(keyframe_s=1.0, queue_frames=1000)
    t = Vp8ToH264(sink, loop=loop, request_keyframe=sink.request, config=config)
    small = encode_video_clip("video/VP8", frames=30, gop=30, size=(160, 120))
    frames = packets(vp8) + packets(small, start=len(vp8.frames) * vp8.step)
    for packet in frames:
        t.put(packet)
    t.close()
    await asyncio.to_thread(t.join, 30)
    await eventually(lambda: len(sink.got) == len(frames), within=5, what="every frame out")
    assert t.stats.dropped == 0 and t.stats.errors == 0 and t.stats.cpu_s > 0
    out = [p for p, _ in sink.got]
    assert [p.pts for p in out] == [p.pts for p in frames]
    keys = [i for i, p in enumerate(out) if p.is_keyframe]
    assert keys == list(range(0, len(frames), 30))  # 30 fps: one IDR per second
    for i in keys:
        data = bytes(out[i])
        assert data.startswith(b"\x00\x00\x00\x01") or data.startswith(b"\x00\x00\x01")
        sets = h264_parameter_sets(data)
        assert sets is not None and h264_dimensions(sets[0]) == (320, 240)
        assert sets[0][1] == 66  # profile_idc 66: baseline
    decoder: Any = av.CodecContext.create("h264", "r")
    decoded = [f for p in out for f in decoder.decode(p)]
    assert {(f.width, f.height) for f in decoded} == {(320, 240)}


async def test_a_full_queue_drops_to_the_next_key_frame(vp8: EncodedClip) -> None:
    """Nothing is taken before the first key frame; a full queue asks for a key frame
    and drops until one comes; what is taken still decodes."""
    sink = Sink()
    loop = asyncio.get_running_loop()
    t = Vp8ToH264(sink, loop=loop, request_keyframe=sink.request,
                  config=TranscodeConfig(queue_frames=4))  # fmt: skip
    frames = packets(vp8)
    t.put(frames[1])  # a delta frame first: dropped
    for packet in frames[:20]:  # the thread cannot keep up with a burst of 20
        t.put(packet)
    t.close()
    await asyncio.to_thread(t.join, 30)
    assert t.stats.dropped >= 1 + 20 - 4 - 1 and sink.keyframe_requests >= 1
    await eventually(lambda: len(sink.got) == t.stats.frames_in - t.stats.dropped, within=5)
    assert sink.got[0][0].is_keyframe
