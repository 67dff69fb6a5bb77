"""Recording through a real node: WHIP publisher → HLS (played by hls.js in Chromium),
a host mark → a clip (share page plays it in Chromium), stream end → replay.

Also: content types, Cache-Control, range requests, path traversal and bad ids.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from aiortc import RTCSessionDescription

from clients.python.room import ClientError, RoomClient
from tests.browser import chromium_path, wait_js
from tests.helpers import Node, create_room, token
from tests.media.sources import EncodedClip, encode_opus_clip, encode_video_clip
from tests.media.sources import publisher_offer as make_offer

pytestmark = pytest.mark.timeout(180)
GOP_S = 2.0


def host() -> dict[str, str]:
    return {"Authorization": f"Bearer {token('host', 'host1')}"}


async def until(check: Callable[[], Awaitable[Any]], within: float, step: float = 0.2) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(step)


@pytest.fixture(scope="module")
def clips() -> list[EncodedClip]:
    return [encode_video_clip("video/H264", frames=150, gop=60), encode_opus_clip(5.0)]


@pytest.fixture
def rec_node(tmp_path: Path, redis_url: str) -> AsyncIterator[Node]:
    node = Node(tmp_path / "node", redis_url=redis_url,
                extra_args=["--record-segment", "3", "--end-grace", "1"])  # fmt: skip
    node.start()
    create_room(node.url)
    yield node  # type: ignore[misc]
    node.stop()


def chromium() -> str:
    """Debian's Chromium (tests.browser: fails under CI=true when missing)."""
    return chromium_path()


async def browser_page(p: Any) -> tuple[Any, Any]:
    browser = await p.chromium.launch(
        executable_path=chromium(),
        args=["--autoplay-policy=no-user-gesture-required",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    )  # fmt: skip
    page = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    return browser, page


HLS_PLAY = """async (url) => {
  const { default: Hls } = await import('/static/vendor/hls.js');
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true;
  document.body.appendChild(video);
  window.hlsErrors = [];
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.hlsErrors.push(d.details); });
  hls.loadSource(url); hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
  window.hlsVideo = video;
  return Hls.isSupported();
}"""


async def test_record_hls_clip_share_and_replay(
    rec_node: Node, clips: list[EncodedClip], tmp_path: Path
) -> None:
    """The whole loop of recorded media on one node, with real peers and a real browser."""
    pc, offer = await make_offer(clips)
    try:
        await scenario(rec_node.url, pc, offer, tmp_path)
    finally:
        await pc.close()


async def scenario(base: str, pc: Any, offer: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        answer = await http.post("/whip/r1", content=offer,
                                 headers={"Content-Type": "application/sdp", **host()})  # fmt: skip
        assert answer.status_code == 201, answer.text
        whip_resource = answer.headers["location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))

        async def playlist() -> str | None:
            r = await http.get("/hls/r1/index.m3u8")
            return r.text if r.status_code == 200 and r.text.count("#EXTINF") >= 2 else None

        text = await until(playlist, 30)
        r = await http.get("/hls/r1/index.m3u8")
        assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert r.headers["cache-control"] == "public, max-age=1"
        uris = [line for line in text.splitlines() if line and not line.startswith("#")]
        stream = uris[0].split("/")[0]
        seg = await http.get(f"/hls/r1/{uris[0]}")
        assert seg.status_code == 200 and seg.headers["content-type"] == "video/iso.segment"
        assert "immutable" in seg.headers["cache-control"]
        part = await http.get(f"/hls/r1/{uris[0]}", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        assert part.headers["content-range"] == f"bytes 0-99/{len(seg.content)}"
        assert part.content == seg.content[:100]
        init = await http.get(f"/hls/r1/{stream}/init.mp4")
        assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"

        # Bad names and traversal: a JSON 404, never a file outside the media directory.
        for path in (f"/hls/r1/{stream}/index.mp4", f"/hls/r1/{stream}/..%2F..%2F..%2Fsecret",
                     "/hls/r1/..%2F..%2Fsecret/init.mp4", "/hls/nope/index.m3u8",
                     "/replay/..%2Fsecret.mp4", "/replay/r1.mp4", "/media/clips/r1~zz.mp4",
                     "/media/clips/..%2F..%2Fsecret.mp4", "/media/clips/r1~0123456789ab.mp4",
                     "/api/clips/nothing", "/api/clips/r1~0123456789ab"):  # fmt: skip
            bad = await http.get(path)
            assert bad.status_code == 404, path
            assert bad.json()["code"] in ("media_not_found", "clip_not_found", "not_found"), path

        # A viewer may not mark (REST or room channel); the host marks on the room
        # channel and everyone in the room hears clip_ready.
        viewer = {"Authorization": f"Bearer {token('viewer', 'v1')}"}
        assert (await http.post("/api/rooms/r1/mark", headers=viewer)).status_code == 403
        async with (
            RoomClient(base, "r1", token("host", "host1")) as console,
            RoomClient(base, "r1", token("viewer", "v1")) as audience,
        ):
            with pytest.raises(ClientError) as refused:
                await audience.request("mark")
            assert refused.value.code == "token_wrong_role"
            at = (await console.request("mark"))["at"]
            while (event := await audience.next_event(wait=30))["t"] != "clip_ready":
                pass
        clip = event["clip"]
        assert clip["kind"] == "mark" and clip["reason"]["kind"] == "mark"
        listed = (await http.get("/api/rooms/r1/clips")).json()["clips"]
        assert [c["id"] for c in listed] == [clip["id"]]
        expected = at + 5 - max(0.0, at - 25)
        assert abs(clip["duration"] - expected) <= GOP_S + 0.2
        video = await http.get(clip["video"])
        assert video.headers["content-type"] == "video/mp4"
        assert (await http.get(clip["thumbnail"])).headers["content-type"] == "image/jpeg"
        local = tmp_path / "clip.mp4"
        local.write_bytes(video.content)
        with av.open(str(local)) as f:
            packets = [p for p in f.demux(f.streams.video[0]) if p.pts is not None]
            assert packets[0].is_keyframe and packets[0].pts == 0
            assert abs(float(f.duration or 0) / 1e6 - clip["duration"]) < 0.2
        about = (await http.get(f"/api/clips/{clip['id']}")).json()
        assert about["room"]["status"] == "live"

        async with async_playwright() as p:
            browser, page = await browser_page(p)
            try:
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(f"{base}/static/app.css")
                assert await page.evaluate(HLS_PLAY, f"{base}/hls/r1/index.m3u8")
                # polled with evaluate (CDP), which the pages' CSP (no eval) allows
                await wait_js(
                    page, "window.hlsVideo.currentTime > 1 || window.hlsErrors.length", 30
                )
                assert await page.evaluate("window.hlsErrors") == []

                # The officer's clip library: the share link carries the code.
                await page.goto(f"{base}/clips/r1?ref=OFF1")
                await page.wait_for_selector(".clip-item button")
                link = await page.get_attribute(".clip-item button", "data-link")
                assert link == f"{base}{clip['share']}?ref=OFF1"

                await page.goto(f"{base}{clip['share']}?ref=OFF1")
                await page.wait_for_selector("#enter:not([hidden])")
                assert await page.get_attribute("#enter", "href") == "/r/r1?ref=OFF1"
                await page.evaluate("(() => { const v = document.getElementById('clip');"
                                    " v.muted = true; return v.play(); })()")  # fmt: skip
                await wait_js(page, "document.getElementById('clip').currentTime > 0.5", 20)
                assert await page.inner_text("#clip-title") == clip["title"]
                assert errors == []
            finally:
                await browser.close()

        # The stream ends: a replay at a stable URL, announced in the room's state.
        await pc.close()
        assert (await http.delete(whip_resource, headers=host())).status_code in (200, 404)

        async def replay_state() -> dict[str, Any] | None:
            room: dict[str, Any] = (await http.get("/api/rooms/r1")).json()
            return room if room.get("replay") and room["status"] == "ended" else None

        room = await until(replay_state, 30)
        assert room["replay"].startswith("/replay/r1.mp4?v=")  # versioned: immutable
        replay = await http.get(room["replay"])
        assert replay.status_code == 200 and replay.headers["content-type"] == "video/mp4"
        assert "immutable" in replay.headers["cache-control"]
        unversioned = await http.get("/replay/r1.mp4")
        assert unversioned.headers["cache-control"] == "public, max-age=60"
        local.write_bytes(replay.content)
        with av.open(str(local)) as f:
            assert float(f.duration or 0) / 1e6 >= clip["duration"] - GOP_S
        final = await http.get("/hls/r1/index.m3u8")
        assert "#EXT-X-ENDLIST" in final.text and "max-age=60" in final.headers["cache-control"]

        # The host deletes the clip; then it is gone (JSON 404s).
        assert (
            await http.delete(f"/api/rooms/r1/clips/{clip['id']}", headers=viewer)
        ).status_code == 403
        gone = await http.delete(f"/api/rooms/r1/clips/{clip['id']}", headers=host())
        assert gone.status_code == 200 and gone.json() == {"deleted": clip["id"]}
        again = await http.delete(f"/api/rooms/r1/clips/{clip['id']}", headers=host())
        assert again.status_code == 404 and again.json()["code"] == "clip_not_found"
        assert (await http.get(clip["video"])).status_code == 404
        assert (await http.get("/api/rooms/r1/clips")).json() == {"clips": []}


VP8_GAUGE = 'livecore_recordings_transcoding{kind="vp8"}'
VP8_CPU = 'livecore_transcode_cpu_seconds_total{kind="vp8"}'


def metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_a_vp8_host_is_recorded_through_one_transcode(rec_node: Node, tmp_path: Path) -> None:
    """A VP8 publisher (a phone whose browser has no H.264 encoder) gets HLS, a clip and
    a replay, all H.264 at the source's size; the operator's metrics show the transcode
    while it runs and its CPU after."""
    clips = [encode_video_clip("video/VP8", frames=150, gop=60), encode_opus_clip(5.0)]
    pc, offer = await make_offer(clips)
    base = rec_node.url
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            sdp = {"Content-Type": "application/sdp", **host()}
            answer = await http.post("/whip/r1", content=offer, headers=sdp)
            assert answer.status_code == 201, answer.text
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))

            async def playlist() -> str | None:
                r = await http.get("/hls/r1/index.m3u8")
                return r.text if r.status_code == 200 and r.text.count("#EXTINF") >= 2 else None

            text = await until(playlist, 30)
            assert await asyncio.to_thread(metric, base, VP8_GAUGE) == 1
            uris = [line for line in text.splitlines() if line and not line.startswith("#")]
            stream = uris[0].split("/")[0]
            init = (await http.get(f"/hls/r1/{stream}/init.mp4")).content
            first = (await http.get(f"/hls/r1/{uris[0]}")).content
            local = tmp_path / "first.mp4"
            local.write_bytes(init + first)
            with av.open(str(local)) as f:
                video = f.streams.video[0]
                assert video.codec_context.name == "h264"
                pictures = list(f.decode(video))
                assert pictures and {(p.width, p.height) for p in pictures} == {(320, 240)}
                assert len(f.streams.audio) == 1
            async with RoomClient(base, "r1", token("host", "host1")) as console:
                await console.request("mark")
                while (event := await console.next_event(wait=30))["t"] != "clip_ready":
                    pass
            clip = (await http.get(event["clip"]["video"])).content
            local.write_bytes(clip)
            with av.open(str(local)) as f:
                assert f.streams.video[0].codec_context.name == "h264"
            await pc.close()

            async def replay() -> str | None:
                room: dict[str, Any] = (await http.get("/api/rooms/r1")).json()
                return room.get("replay") if room["status"] == "ended" else None

            url = await until(replay, 30)
            local.write_bytes((await http.get(url)).content)
            with av.open(str(local)) as f:
                assert f.streams.video[0].codec_context.name == "h264"
                assert float(f.duration or 0) / 1e6 >= 2.0
            assert await asyncio.to_thread(metric, base, VP8_GAUGE) == 0
            assert await asyncio.to_thread(metric, base, VP8_CPU) > 0
    finally:
        await pc.close()
