"""讲解 and marks from a node that does not record: two real nodes on one Valkey, the host's
camera (WHIP, real aiortc H.264) on node A, its console (the room channel) on node B.

B answers from A's recording lease and hands the taps to A through Valkey; A cuts the
clips; B's sockets hear ``clip_ready``. Before the live, B refuses (``not_recording``)
and writes nothing (the lease is the one source of truth for both nodes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCSessionDescription

from clients.python.room import ClientError, RoomClient
from tests.helpers import Node, create_room, token
from tests.media.sources import encode_opus_clip, encode_video_clip
from tests.media.sources import publisher_offer as make_offer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def two_nodes(tmp_path: Path, redis_url: str) -> Iterator[tuple[Node, Node]]:
    nodes = [Node(tmp_path / name, redis_url=redis_url, extra_args=["--record-segment", "1"])
             for name in ("a", "b")]  # fmt: skip
    for n in nodes:
        n.start()
    create_room(nodes[0].url)
    yield nodes[0], nodes[1]
    for n in nodes:
        n.stop()


async def clip_of(client: RoomClient, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + 40
    while True:
        event = await client.next_event(wait=max(0.1, deadline - time.monotonic()))
        if event["t"] == "clip_ready" and event["clip"]["kind"] == kind:
            return dict(event["clip"])
        assert time.monotonic() < deadline, f"no {kind} clip"


async def test_taps_on_another_node_reach_the_recording(two_nodes: tuple[Node, Node]) -> None:
    """Mark and 讲解 from node B become clips cut on node A."""
    a, b = two_nodes
    clips = [encode_video_clip("video/H264", frames=150, gop=30), encode_opus_clip(5.0)]
    pc, offer = await make_offer(clips)
    host = {"Authorization": f"Bearer {token('host', 'host1')}"}
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=10) as http,
        RoomClient(b.url, "r1", token("host", "host1")) as console,
    ):
        await console.request("card", kind="product", name="土鸡蛋 30枚", price_cents=3990)
        with pytest.raises(ClientError) as early:
            await console.request("mark")
        assert early.value.code == "not_recording"
        answer = await http.post("/whip/r1", content=offer,
                                 headers={"Content-Type": "application/sdp", **host})  # fmt: skip
        assert answer.status_code == 201, answer.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
        deadline = time.monotonic() + 30
        while True:  # B learns of A's recording from the lease
            try:
                began = (await console.request("explain", product="土鸡蛋 30枚"))["at"]
                break
            except ClientError as err:
                assert err.code == "not_recording" and time.monotonic() < deadline
                await asyncio.sleep(0.3)  # paces the asking: the answer is what changes
        # paces the explanation: the segment is 3 s of the stream
        await asyncio.sleep(3)
        ended = (await console.request("explain"))["at"]
        explained = await clip_of(console, "explain")
        assert explained["product"] == "土鸡蛋 30枚" and ended - began >= 2.5
        at = (await console.request("mark"))["at"]
        marked = await clip_of(console, "mark")
        assert marked["product"] == "土鸡蛋 30枚" and at >= ended
        assert marked["reason"]["peak"] == pytest.approx(at, abs=1.0)
    await pc.close()
