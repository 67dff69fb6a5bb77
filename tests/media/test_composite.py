"""The co-stream's picture-in-picture for the recording, with real codecs."""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import av
import pytest

from media.composite import PipComposer, PipLayout, inset_rect
from media.container import h264_dimensions, h264_parameter_sets
from media.transcode import TranscodeConfig
from tests.media.sources import EncodedClip, encode_video_clip
from tests.waiting import eventually

RED = (81, 90, 240)  # BT.601 limited-range Y, U, V of pure red


def red_vp8(frames: int, size: tuple[int, int]) -> list[tuple[bytes, bool]]:
    """A solid red picture (the KOC), VP8, one key frame every 30 frames."""
    ctx: Any = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt, ctx.time_base, ctx.gop_size = "yuv420p", fractions.Fraction(1, 30), 30
    ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[tuple[bytes, bool]] = []
    for i in range(frames):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        for plane, value in zip(frame.planes, RED, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    return out + [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]


@pytest.fixture(scope="module")
def host() -> EncodedClip:
    return encode_video_clip("video/H264", frames=60, gop=30, size=(320, 240))


def packet(data: bytes, key: bool, pts: int) -> Any:
    p = av.Packet(data)
    p.pts, p.time_base, p.is_keyframe = pts, fractions.Fraction(1, 90000), key
    return p


def mean(plane: Any, x: int, y: int, w: int, h: int) -> float:
    view = memoryview(plane)
    rows = [view[(y + r) * plane.line_size + x : (y + r) * plane.line_size + x + w]
            for r in range(h)]  # fmt: skip
    return sum(sum(row) for row in rows) / (w * h)


def test_the_inset_sits_top_right_at_30_percent_with_its_aspect() -> None:
    """A 4:3 KOC in a 1280×720 host: 384 wide, 288 high, 38 px from the top and right."""
    assert inset_rect((1280, 720), (640, 480), PipLayout()) == (858, 38, 384, 288)
    x, y, w, h = inset_rect((320, 240), (90, 160), PipLayout())  # a portrait KOC
    assert (w, h) == (96, 170) and x + w <= 320 and all(v % 2 == 0 for v in (x, y, w, h))


async def test_the_koc_is_drawn_into_the_hosts_picture(host: EncodedClip) -> None:
    """Host frames keep their timestamps and size; once the KOC's first picture has come
    the inset shows it (red) and the rest is the host's; an IDR opens the output."""
    got: list[tuple[Any, float]] = []
    requests: list[str] = []
    loop = asyncio.get_running_loop()
    composer = PipComposer(
        lambda p, at: got.append((p, at)), loop=loop, host_codec="video/H264",
        guest_codec="video/VP8", request_keyframe=requests.append,
        config=TranscodeConfig(queue_frames=1000),
    )  # fmt: skip
    guest = red_vp8(30, (160, 120))
    hosts = [packet(d, k, i * host.step) for i, (d, k) in enumerate(host.frames)]
    composer.put_host(hosts[0])
    for i, h in enumerate(hosts[1:], start=1):
        if i - 1 < len(guest):
            composer.put_guest(packet(*guest[i - 1], (i - 1) * 3000))
        composer.put_host(h)
    composer.close()
    await asyncio.to_thread(composer.join, 30)
    await eventually(lambda: len(got) == len(hosts), within=5, what="one frame out per host frame")
    out = [p for p, _ in got]
    assert [p.pts for p in out] == [h.pts for h in hosts] and out[0].is_keyframe
    sets = h264_parameter_sets(bytes(out[0]))
    assert sets is not None and h264_dimensions(sets[0]) == (320, 240)
    decoder: Any = av.CodecContext.create("h264", "r")
    pictures = [f for p in out for f in decoder.decode(p)]
    x, y, w, h = inset_rect((320, 240), (160, 120), PipLayout())
    last = pictures[-1]
    inside = [mean(last.planes[0], x + 4, y + 4, w - 8, h - 8),
              mean(last.planes[1], x // 2 + 2, y // 2 + 2, w // 2 - 4, h // 2 - 4),
              mean(last.planes[2], x // 2 + 2, y // 2 + 2, w // 2 - 4, h // 2 - 4)]  # fmt: skip
    assert all(abs(a - b) < 12 for a, b in zip(inside, RED, strict=True)), inside
    assert abs(mean(last.planes[2], 4, 60, 60, 40) - RED[2]) > 40  # the host's, not red
    first = pictures[0]  # before any KOC picture: the host's alone
    assert abs(mean(first.planes[2], x // 2 + 2, y // 2 + 2, w // 2 - 4, h // 2 - 4) - 240) > 40
    assert composer.stats.dropped == 0 and requests == []
