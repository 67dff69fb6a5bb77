"""A KOC's co-stream in the recording: drawn into the host's picture while on air, gone
after, through a real node, real aiortc publishers and the real recorder."""

from __future__ import annotations

import asyncio
import fractions
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from clients.python.room import RoomClient
from media.composite import PipLayout, inset_rect
from media.hlsplaylist import MediaPlaylist, parse
from tests.helpers import Node, create_room, token
from tests.media.sources import EncodedClip, encode_video_clip
from tests.media.test_composite import RED, mean, red_vp8
from tests.signalling.routes.test_whip import publish
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(180)
COMPOSITE = 'livecore_recordings_transcoding{kind="composite"}'
COMPOSITE_CPU = 'livecore_transcode_cpu_seconds_total{kind="composite"}'


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    n = Node(tmp_path / "node", redis_url=redis_url, extra_args=["--record-segment", "1"])
    n.start()
    create_room(n.url)
    yield n
    n.stop()


def metric(node: Node, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", httpx.get(f"{node.url}/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


async def playlist(http: httpx.AsyncClient) -> MediaPlaylist | None:
    answer = await http.get("/hls/r1/index.m3u8")
    return parse(answer.text) if answer.status_code == 200 else None


async def segment_after(http: httpx.AsyncClient, maps: int) -> tuple[str, str] | None:
    """(init, segment) URIs of a complete segment under the ``maps``-th init (from 0)."""
    found = await playlist(http)
    if found is None:
        return None
    inits: list[str] = []
    for entry in found.entries:
        if entry.map_uri not in inits:
            inits.append(entry.map_uri)
        if len(inits) == maps + 1 and entry.complete and entry.map_uri == inits[maps]:
            return entry.map_uri, entry.uri
    return None


async def inset_colour(http: httpx.AsyncClient, uris: tuple[str, str]) -> float:
    """The mean V (red chroma) of the inset's area in the segment's last picture."""
    init, seg = uris
    data = (await http.get(f"/hls/r1/{init}")).content + (await http.get(f"/hls/r1/{seg}")).content
    with av.open(io.BytesIO(data)) as f:
        pictures = list(f.decode(f.streams.video[0]))
    last = pictures[-1]
    assert (last.width, last.height) == (320, 240)
    x, y, w, h = inset_rect((320, 240), (160, 120), PipLayout())
    return mean(last.planes[2], x // 2 + 2, y // 2 + 2, w // 2 - 4, h // 2 - 4)


async def test_a_costream_is_drawn_into_the_recording(node: Node) -> None:
    """Host alone → the KOC on air: a new init segment whose pictures carry the KOC (red)
    in the corner → the KOC ended: another init, the host alone again; the metrics
    count the composite while it runs and its CPU after."""
    host_clip = encode_video_clip("video/H264", frames=90, gop=30)
    koc_clip = EncodedClip("video", "video/VP8", red_vp8(90, (160, 120)),
                           fractions.Fraction(1, 90000), 3000, 1 / 30)  # fmt: skip
    host = RoomClient(node.url, "r1", token("host", "host1"))
    koc = RoomClient(node.url, "r1", token("koc", "koc1"))
    pcs: list[Any] = []
    await host.connect()
    await koc.connect()
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            hpc, answer = await publish(node, [host_clip])
            pcs.append(hpc)
            assert answer.status_code == 201, answer.text
            alone = await eventually(lambda: segment_after(http, 0), within=30, what="HLS")
            assert abs(await inset_colour(http, alone) - RED[2]) > 40
            await koc.request("costream_request")
            await host.request("costream_accept", user="koc1")
            kpc, answer = await publish(node, [koc_clip], "koc", "koc1")
            pcs.append(kpc)
            assert answer.status_code == 201, answer.text
            drawn = await eventually(lambda: segment_after(http, 1), within=30, what="composite")
            assert abs(await inset_colour(http, drawn) - RED[2]) < 15
            assert await asyncio.to_thread(metric, node, COMPOSITE) == 1
            await host.request("costream_end", user="koc1")
            back = await eventually(lambda: segment_after(http, 2), within=30, what="host alone")
            assert abs(await inset_colour(http, back) - RED[2]) > 40
            await eventually(lambda: asyncio.to_thread(metric, node, COMPOSITE_CPU), within=10)
            assert await asyncio.to_thread(metric, node, COMPOSITE) == 0
    finally:
        for pc in pcs:
            await pc.close()
        await host.close()
        await koc.close()


async def test_a_koc_on_another_node_is_pulled_into_the_recording(
    tmp_path: Path, redis_url: str
) -> None:
    """The host publishes to node A (which records), the KOC to node B: A hears of it
    through the room's control stream, pulls one copy from B and draws it in."""
    args = ["--record-segment", "1"]
    a = Node(tmp_path / "a", redis_url=redis_url, extra_args=args).start()
    b = Node(tmp_path / "b", redis_url=redis_url, extra_args=args).start()
    host_clip = encode_video_clip("video/H264", frames=90, gop=30)
    koc_clip = EncodedClip("video", "video/H264", red_h264(), fractions.Fraction(1, 90000),
                           3000, 1 / 30)  # fmt: skip
    pcs: list[Any] = []
    host = RoomClient(a.url, "r1", token("host", "host1"))
    koc = RoomClient(b.url, "r1", token("koc", "koc1"))
    try:
        create_room(a.url)
        await host.connect()
        await koc.connect()
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as http:
            hpc, answer = await publish(a, [host_clip])
            pcs.append(hpc)
            assert answer.status_code == 201, answer.text
            await eventually(lambda: segment_after(http, 0), within=30, what="HLS")
            await koc.request("costream_request")
            await host.request("costream_accept", user="koc1")
            kpc, answer = await publish(b, [koc_clip], "koc", "koc1")
            pcs.append(kpc)
            assert answer.status_code == 201, answer.text
            drawn = await eventually(lambda: segment_after(http, 1), within=30, what="composite")
            assert abs(await inset_colour(http, drawn) - RED[2]) < 15
            assert await asyncio.to_thread(metric, a, COMPOSITE) == 1
            pulls = 'livecore_media_sessions{kind="whep"}'
            assert await asyncio.to_thread(metric, b, pulls) == 1  # A's one copy
    finally:
        for pc in pcs:
            await pc.close()
        await host.close()
        await koc.close()
        a.stop()
        b.stop()


def red_h264() -> list[tuple[bytes, bool]]:
    """The KOC's solid red picture as H.264 (libx264), a key frame every 30 frames."""
    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 160, 120, "yuv420p"
    ctx.time_base, ctx.profile = fractions.Fraction(1, 30), "Baseline"
    params = "keyint=30:min-keyint=30:scenecut=0:repeat-headers=1"
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": params}
    out: list[tuple[bytes, bool]] = []
    for i in range(90):
        frame = av.VideoFrame(160, 120, "yuv420p")
        for plane, value in zip(frame.planes, RED, strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts = i
        out += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    return out + [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
