"""Recorded media through object storage, on a real node against a real S3 server.

A WHIP publisher (aiortc) → a host's mark → a clip, uploaded with the node's
minimal keys (moto_server enforcing IAM), gone from the node's disk and still
served by the node from the bucket (whole, by range, played by Chromium); the
stream ends → the replay, the same way; a deleted clip leaves the bucket. A
store that is down: the clip stays on disk and is served from there, and goes
up once the store answers. With --s3-hls, another node serves the live HLS from the
bucket, also after the recording node is killed. (Storage off:
tests/signalling/services/test_recording.py.)
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from aiortc import RTCSessionDescription

from media.hlsplaylist import Entry, parse
from tests.browser import PLAY_MUTED, wait_js
from tests.helpers import Node, create_room, free_port
from tests.media.simulsource import Layer, SimulcastPublisher
from tests.media.sources import EncodedClip, encode_opus_clip, encode_video_clip
from tests.media.sources import publisher_offer as make_offer
from tests.media.test_ridemux import layer_clips  # noqa: F401 - the clips fixture
from tests.s3server import BUCKET, PREFIX, S3Server
from tests.signalling.services.test_recording import HLS_PLAY, browser_page, host, until

pytestmark = pytest.mark.timeout(240)
#: Storage is what these tests are about, not a clip's timing: 1 s segments (the clips'
#: keyframes are 1 s apart) and a mark decided 5/4 s after it, not 5 s.
FAST_CLIPS = ("--record-segment", "1", "--highlight-time-scale", "4")


@pytest.fixture(scope="module")
def clips() -> list[EncodedClip]:
    return [encode_video_clip("video/H264", frames=150, gop=30), encode_opus_clip(5.0)]


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(auth=True).start(tmp_path / "moto.log")
    yield server
    server.stop()


def start_node(tmp_path: Path, redis_url: str, server: S3Server) -> Node:
    args = server.node_args(tmp_path / "s3.secret")
    node = Node(tmp_path / "node", redis_url=redis_url,
                extra_args=[*args, *FAST_CLIPS, "--end-grace", "1", "--s3-retry", "1"])  # fmt: skip
    node.start()
    create_room(node.url)
    return node


def in_bucket(server: S3Server, key: str) -> bytes | None:
    """The object's bytes as the operator sees them (admin keys), or None."""
    try:
        body: bytes = server.client("s3").get_object(Bucket=BUCKET, Key=PREFIX + key)["Body"].read()
    except server.client("s3").exceptions.NoSuchKey:
        return None
    return body


def this_stream(text: str) -> list[Entry]:
    """The complete segments of the playlist's newest stream (a re-published stream's
    playlist lists the previous one's before a discontinuity)."""
    entries = parse(text).entries
    stream = entries[-1].map_uri.split("/")[0] if entries else ""
    return [e for e in entries if e.complete and e.map_uri.split("/")[0] == stream]


async def publish_and_mark(
    http: httpx.AsyncClient, pc: Any, offer: str
) -> tuple[str, dict[str, Any]]:
    """Publish, let two segments be written, mark: the WHIP resource and the clip."""
    answer = await http.post("/whip/r1", content=offer,
                             headers={"Content-Type": "application/sdp", **host()})  # fmt: skip
    assert answer.status_code == 201, answer.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))

    async def playlist() -> bool:
        r = await http.get("/hls/r1/index.m3u8")
        live = "#EXT-X-PRELOAD-HINT" in r.text  # not an earlier stream's playlist
        return r.status_code == 200 and live and len(this_stream(r.text)) >= 2

    await until(playlist, 30)
    assert (await http.post("/api/rooms/r1/mark", headers=host())).status_code == 202

    async def listed() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await http.get("/api/rooms/r1/clips")).json()["clips"]
        return found

    return answer.headers["location"], (await until(listed, 40))[0]


async def test_clip_and_replay_served_from_the_bucket(
    tmp_path: Path, redis_url: str, s3: S3Server, clips: list[EncodedClip]
) -> None:
    """Uploaded with the node's minimal keys, gone from its disk, served by the node."""
    from playwright.async_api import async_playwright

    node = start_node(tmp_path, redis_url, s3)
    media = tmp_path / "node" / "media"
    pc, offer = await make_offer(clips)
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            whip, clip = await publish_and_mark(http, pc, offer)
            hexid = clip["id"].split("~")[1]
            local = media / "clips" / "r1" / f"{hexid}.mp4"

            async def uploaded() -> bytes | None:
                video = in_bucket(s3, f"clips/r1/{hexid}.mp4")
                thumb = in_bucket(s3, f"clips/r1/{hexid}.jpg")
                gone = not local.exists() and not local.with_suffix(".jpg").exists()
                return video if video and thumb and gone else None

            stored = await until(uploaded, 30)
            video = await http.get(clip["video"])
            assert video.status_code == 200 and video.content == stored
            assert video.headers["content-type"] == "video/mp4"
            assert "immutable" in video.headers["cache-control"]
            part = await http.get(clip["video"], headers={"Range": "bytes=100-199"})
            assert part.status_code == 206 and part.content == stored[100:200]
            assert part.headers["content-range"] == f"bytes 100-199/{len(stored)}"
            far = await http.get(clip["video"], headers={"Range": f"bytes={len(stored)}-"})
            assert far.status_code == 416
            thumb = await http.get(clip["thumbnail"])
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

            async with async_playwright() as p:
                browser, page = await browser_page(p)
                try:
                    await page.goto(f"{node.url}{clip['share']}")
                    assert await page.evaluate(PLAY_MUTED, "clip")
                    await wait_js(page, "document.getElementById('clip').currentTime > 0.5", 20)
                finally:
                    await browser.close()

            await pc.close()
            assert (await http.delete(whip, headers=host())).status_code in (200, 404)

            async def replay() -> bytes | None:
                room = (await http.get("/api/rooms/r1")).json()
                body = in_bucket(s3, "replay/r1.mp4")
                gone = not (media / "replay" / "r1.mp4").exists()
                return body if room.get("replay") and body and gone else None

            stored = await until(replay, 40)
            served = await http.get("/replay/r1.mp4")
            assert served.status_code == 200 and served.content == stored
            assert served.headers["cache-control"] == "public, max-age=60"
            again = await http.get("/replay/r1.mp4",
                                   headers={"If-None-Match": served.headers["etag"]})  # fmt: skip
            assert again.status_code == 304
            copy = tmp_path / "replay.mp4"
            copy.write_bytes(served.content)
            with av.open(str(copy)) as f:
                assert float(f.duration or 0) / 1e6 >= clip["duration"] - 2.0

            gone = await http.delete(f"/api/rooms/r1/clips/{clip['id']}", headers=host())
            assert gone.status_code == 200
            assert in_bucket(s3, f"clips/r1/{hexid}.mp4") is None
            missing = await http.get(clip["video"])
            assert missing.status_code == 404 and missing.json()["code"] == "clip_not_found"
    finally:
        await pc.close()
        node.stop()


async def test_a_store_that_is_down_keeps_the_clip_on_disk_until_it_answers(
    tmp_path: Path, redis_url: str, clips: list[EncodedClip]
) -> None:
    """The store does not answer: the clip is made, kept and served from the node's disk;
    once the store answers, a later sweep uploads it and it leaves the disk."""
    later = S3Server(auth=False, port=free_port())
    node = start_node(tmp_path, redis_url, later)
    media = tmp_path / "node" / "media"
    pc, offer = await make_offer(clips)
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            _, clip = await publish_and_mark(http, pc, offer)
            hexid = clip["id"].split("~")[1]
            local = media / "clips" / "r1" / f"{hexid}.mp4"

            async def failed() -> bool:
                metrics = await http.get("/metrics")
                return 'livecore_media_uploads_total{result="failed"}' in metrics.text

            await until(failed, 30)
            assert local.exists()
            kept = await http.get(clip["video"])
            assert kept.status_code == 200 and kept.content == local.read_bytes()
            later.start(tmp_path / "moto.log")
            try:

                async def uploaded() -> bytes | None:
                    body = in_bucket(later, f"clips/r1/{hexid}.mp4")
                    return body if body and not local.exists() else None

                stored = await until(uploaded, 60)
                assert stored == kept.content
                assert (await http.get(clip["video"])).content == stored
            finally:
                later.stop()
    finally:
        await pc.close()
        node.stop()


async def test_a_republished_live_extends_the_replay_fetched_back_from_the_bucket(
    tmp_path: Path, redis_url: str, s3: S3Server, clips: list[EncodedClip]
) -> None:
    """The host publishes again within the end grace: the first stream's replay, already
    uploaded and gone from the disk, is fetched back and extended by the second."""
    node = Node(tmp_path / "node", redis_url=redis_url,
                extra_args=[*s3.node_args(tmp_path / "s3.secret"), *FAST_CLIPS,
                            "--end-grace", "60", "--s3-retry", "2"])  # fmt: skip
    node.start()
    create_room(node.url)
    local = tmp_path / "node" / "media" / "replay" / "r1.mp4"
    durations: list[float] = []
    streams: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            for _ in range(2):
                pc, offer = await make_offer(clips)
                try:
                    whip, _ = await publish_and_mark(http, pc, offer)
                    # Ended as a host ends it (a connection that closes first is a lost
                    # host: the node keeps the stream for the end grace, 60 s here).
                    assert (await http.delete(whip, headers=host())).status_code == 200
                finally:
                    await pc.close()
                before = durations[-1] if durations else 0.0

                async def longer(before: float = before) -> float | None:
                    body = in_bucket(s3, "replay/r1.mp4")
                    if body is None or local.exists():
                        return None
                    copy = tmp_path / "replay.mp4"
                    copy.write_bytes(body)
                    with av.open(str(copy)) as f:
                        seconds = float(f.duration or 0) / 1e6
                    return seconds if seconds > before + 2 else None

                # a loaded machine: a failed upload is retried by the next sweep
                durations.append(await until(longer, 75))
                ended = (await http.get("/hls/r1/index.m3u8")).text  # this stream's playlist
                assert "#EXT-X-PRELOAD-HINT" not in ended  # written to its end
                streams.append(sum(e.duration for e in this_stream(ended)))
    finally:
        node.stop()
    # The replay holds both streams (each within a frame or so of its playlist).
    assert durations[0] == pytest.approx(streams[0], abs=0.5)
    assert durations[1] == pytest.approx(streams[0] + streams[1], abs=1.0)


async def test_live_hls_from_the_bucket_through_another_node(
    tmp_path: Path, redis_url: str, s3: S3Server, clips: list[EncodedClip]
) -> None:
    """With --s3-hls, a node that records nothing serves the room's live HLS from the
    bucket (hls.js plays it in Chromium), and still does once the recording node is
    killed."""
    from playwright.async_api import async_playwright

    args = [*s3.node_args(tmp_path / "s3.secret"), "--s3-hls", "--record-segment", "1"]
    origin = Node(tmp_path / "a", redis_url=redis_url, extra_args=args).start()
    other = Node(tmp_path / "b", redis_url=redis_url, extra_args=args).start()
    create_room(origin.url)
    pc, offer = await make_offer(clips)
    try:
        async with (
            httpx.AsyncClient(base_url=origin.url, timeout=10) as http,
            httpx.AsyncClient(base_url=other.url, timeout=10) as far,
        ):
            sdp = {"Content-Type": "application/sdp", **host()}
            answer = await http.post("/whip/r1", content=offer, headers=sdp)
            assert answer.status_code == 201, answer.text
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))

            async def playlist() -> str | None:
                r = await far.get("/hls/r1/index.m3u8")
                return r.text if r.status_code == 200 and r.text.count("#EXTINF") >= 3 else None

            text = await until(playlist, 40)
            assert (await far.get("/hls/r1/index.m3u8")).headers["cache-control"] == (
                "public, max-age=1"
            )
            uris = [line for line in text.splitlines() if line and not line.startswith("#")]
            here = await http.get(f"/hls/r1/{uris[0]}")
            there = await far.get(f"/hls/r1/{uris[0]}")
            assert there.status_code == 200 and there.content == here.content
            assert there.headers["content-type"] == "video/iso.segment"
            assert "immutable" in there.headers["cache-control"]
            assert not (tmp_path / "b" / "media" / "rec").exists()  # nothing recorded on b

            async with async_playwright() as p:
                browser, page = await browser_page(p)
                try:
                    await page.goto(f"{other.url}/static/app.css")
                    assert await page.evaluate(HLS_PLAY, f"{other.url}/hls/r1/index.m3u8")
                    await wait_js(
                        page, "window.hlsVideo.currentTime > 1 || window.hlsErrors.length", 30
                    )
                    assert await page.evaluate("window.hlsErrors") == []
                finally:
                    await browser.close()

            origin.stop(signal.SIGKILL)
            last = await far.get("/hls/r1/index.m3u8")
            assert last.status_code == 200
            assert (await far.get("/hls/r1/master.m3u8")).status_code == 200
            tail = [line for line in last.text.splitlines() if line and not line.startswith("#")]
            assert (await far.get(f"/hls/r1/{tail[-1]}")).status_code == 200
    finally:
        await pc.close()
        other.stop()
        origin.stop()


async def test_every_rendition_of_a_simulcast_host_goes_to_the_bucket(
    tmp_path: Path,
    redis_url: str,
    s3: S3Server,
    layer_clips: dict[str, EncodedClip],  # noqa: F811
) -> None:
    """With --s3-hls each layer's rendition is uploaded beside the top one (its files and
    its playlist under the room's ``<layer>_index.m3u8`` key), so the bucket's
    multivariant playlist names nothing the bucket lacks; when the room ends every
    rendition's playlist there gets ``#EXT-X-ENDLIST``."""
    args = [*s3.node_args(tmp_path / "s3.secret"), "--s3-hls", "--record-segment", "1",
            "--end-grace", "1"]  # fmt: skip
    node = Node(tmp_path / "a", redis_url=redis_url, extra_args=args).start()
    create_room(node.url)
    publisher = SimulcastPublisher([Layer(rid, clip) for rid, clip in layer_clips.items()])
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            sdp = {"Content-Type": "application/sdp", **host()}
            answer = await http.post("/whip/r1", content=await publisher.offer(), headers=sdp)
            assert answer.status_code == 201, answer.text
            await publisher.accept(answer.text)
            names = ["index.m3u8", "m_index.m3u8", "l_index.m3u8"]

            async def uploaded() -> list[str] | None:
                texts = [(in_bucket(s3, f"rec/r1/{name}") or b"").decode() for name in names]
                return texts if all(t.count("#EXTINF") >= 2 for t in texts) else None

            texts = await until(uploaded, 40)
            master = (in_bucket(s3, "rec/r1/master.m3u8") or b"").decode()
            listed = [x for x in master.splitlines() if x and not x.startswith("#")]
            assert sorted(listed) == sorted(names), master
            for text in texts:  # every segment a rendition's playlist names is there too
                first = next(x for x in text.splitlines() if x and not x.startswith("#"))
                assert in_bucket(s3, f"rec/r1/{first}") is not None, first
            gone = await http.delete(answer.headers["location"], headers=host())
            assert gone.status_code == 200

            async def ended() -> bool:
                texts = [(in_bucket(s3, f"rec/r1/{name}") or b"").decode() for name in names]
                return all(t.rstrip().endswith("#EXT-X-ENDLIST") for t in texts)

            await until(ended, 30)
            for name in names:  # and on the node's disk: no rendition left "live"
                assert (
                    (await http.get(f"/hls/r1/{name}")).text.rstrip().endswith("#EXT-X-ENDLIST")
                ), name
    finally:
        await publisher.close()
        node.stop()
