"""Hops: PATCH and DELETE of a WHIP/WHEP session reach its node from any node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from signalling.services.peerhop import resource_id, session_of
from tests.helpers import Node, create_room
from tests.media.sources import EncodedClip, encode_video_clip
from tests.signalling.routes.test_whip import auth, publish, watch


@pytest.fixture(scope="module")
def h264() -> EncodedClip:
    return encode_video_clip("video/H264", frames=150)


def test_the_resource_names_its_node() -> None:
    """<session>.<node id in hex>; a resource naming no node (or not in hex) is
    answered where it lands (session_not_found unless that node holds it)."""
    rid = resource_id("ab" * 16, "vm-1.w0:é")
    assert session_of(rid) == ("ab" * 16, "vm-1.w0:é")
    assert session_of("ab" * 16) == ("ab" * 16, None)
    assert session_of("ab.zz") == ("ab.zz", None)


async def _whep_sessions(node: Node) -> str:
    text = await asyncio.to_thread(lambda: httpx.get(f"{node.url}/metrics").text)
    return next(line for line in text.splitlines()
                if line.startswith('livecore_media_sessions{kind="whep"}'))  # fmt: skip


async def test_patch_and_delete_through_another_node(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """A viewer's session at A is patched and ended through B: B passes each request
    to A and A's answer back (412 for a stale ETag, 403 for someone else's token,
    200 for the owner); a resource naming an unknown node is 404 there."""
    a = Node(tmp_path / "a", redis_url=redis_url, extra_args=["--node-id", "a"]).start()
    b = Node(tmp_path / "b", redis_url=redis_url, extra_args=["--node-id", "b"]).start()
    try:
        create_room(a.url)
        pc, created = await publish(a, [h264])
        assert created.status_code == 201, created.text
        viewer, played = await watch(a, "v1")
        location = played.headers["location"]
        async with httpx.AsyncClient(base_url=b.url) as http:
            frag = {"Content-Type": "application/trickle-ice-sdpfrag"}
            stale = await http.patch(
                location,
                content="a=end-of-candidates\r\n",
                headers={**frag, **auth("viewer", "v1"), "If-Match": '"x"'},
            )
            assert stale.status_code == 412, stale.text
            assert stale.json()["code"] == "precondition_failed"
            trickled = await http.patch(
                location, content="a=end-of-candidates\r\n",
                headers={**frag, **auth("viewer", "v1"), "If-Match": played.headers["etag"]},
            )  # fmt: skip
            assert trickled.status_code == 204, trickled.text
            other = await http.delete(location, headers=auth("viewer", "v2"))
            assert other.status_code == 403 and other.json()["code"] == "token_wrong_role"
            assert (await _whep_sessions(a)).endswith(" 1.0")
            gone = await http.delete(location, headers=auth("viewer", "v1"))
            assert gone.status_code == 200, gone.text
            nowhere = location.rsplit(".", 1)[0] + "." + b"ghost".hex()
            lost = await http.delete(nowhere, headers=auth("viewer", "v1"))
            assert lost.status_code == 404 and lost.json()["code"] == "session_not_found"
        for _ in range(100):
            if (await _whep_sessions(a)).endswith(" 0.0"):
                break
            await asyncio.sleep(0.05)
        assert (await _whep_sessions(a)).endswith(" 0.0")
        await viewer.close()
        await pc.close()
    finally:
        a.stop()
        b.stop()
