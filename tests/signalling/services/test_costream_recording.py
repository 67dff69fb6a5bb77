"""A KOC's co-stream in the recording: drawn into the host's picture while on air, gone
after, through a real node, real aiortc publishers and the real recorder."""

from __future__ import annotations

import asyncio
import fractions
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


async def inset_colour(http: httpx.AsyncClient, uris: tuple[str, str], tmp: Path) -> float:
    """The mean V (red chroma) of the inset's area in the segment's last picture."""
    init, seg = uris
    tmp.write_bytes((await http.get(f"/hls/r1/{init}")).content
                    + (await http.get(f"/hls/r1/{seg}")).content)  # fmt: skip
    with av.open(str(tmp)) as f:
        pictures = list(f.decode(f.streams.video[0]))
    last = pictures[-1]
    assert (last.width, last.height) == (320, 240)
    x, y, w, h = inset_rect((320, 240), (160, 120), PipLayout())
    return mean(last.planes[2], x // 2 + 2, y // 2 + 2, w // 2 - 4, h // 2 - 4)


async def test_a_costream_is_drawn_into_the_recording(node: Node, tmp_path: Path) -> None:
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
            assert abs(await inset_colour(http, alone, tmp_path / "a.mp4") - RED[2]) > 40
            await koc.request("costream_request")
            await host.request("costream_accept", user="koc1")
            kpc, answer = await publish(node, [koc_clip], "koc", "koc1")
            pcs.append(kpc)
            assert answer.status_code == 201, answer.text
            drawn = await eventually(lambda: segment_after(http, 1), within=30, what="composite")
            assert abs(await inset_colour(http, drawn, tmp_path / "b.mp4") - RED[2]) < 15
            assert await asyncio.to_thread(metric, node, COMPOSITE) == 1
            await host.request("costream_end", user="koc1")
            back = await eventually(lambda: segment_after(http, 2), within=30, what="host alone")
            assert abs(await inset_colour(http, back, tmp_path / "c.mp4") - RED[2]) > 40
            await eventually(lambda: asyncio.to_thread(metric, node, COMPOSITE_CPU), within=10)
            assert await asyncio.to_thread(metric, node, COMPOSITE) == 0
    finally:
        for pc in pcs:
            await pc.close()
        await host.close()
        await koc.close()
