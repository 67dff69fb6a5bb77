"""Low-latency HLS through real nodes: a real aiortc publisher over WHIP, the origin
node's recorder, and a second node that answers the same URLs (passing blocking
reloads through to the origin). A re-publish continues the media sequence after a
discontinuity; a resolution change starts a new init segment."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from aiortc import RTCSessionDescription

from media.hlsplaylist import MediaPlaylist, attributes, parse
from media.peers import MediaPeerConnection, codec_preferences, create_peer_connection
from tests.browser import wait_js
from tests.helpers import Node, create_room, free_port, token
from tests.media.hlscheck import strict_check
from tests.media.simulsource import Layer, SimulcastPublisher
from tests.media.sources import EncodedClip, EncodedTrack, encode_opus_clip, encode_video_clip
from tests.media.test_ridemux import layer_clips  # noqa: F401 - the clips fixture
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(180)


def host_auth() -> dict[str, str]:
    """The host's credential, minted when used (a module may run minutes after import)."""
    return {"Authorization": f"Bearer {token('host', 'host1')}"}


@pytest.fixture(scope="module")
def clips() -> list[EncodedClip]:
    return [encode_video_clip("video/H264", frames=150, gop=60), encode_opus_clip(5.0)]


@pytest.fixture
def nodes(tmp_path: Path, redis_url: str) -> Iterator[tuple[Node, Node]]:
    started: list[Node] = []
    try:
        for name in ("a", "b"):
            node = Node(tmp_path / name, redis_url=redis_url, port=free_port())
            node.extra_args = ["--node-id", f"node-{name}", "--node-url", node.url,
                               "--record-segment", "2", "--end-grace", "30"]  # fmt: skip
            started.append(node.start())
        create_room(started[0].url)
        yield started[0], started[1]
    finally:
        for node in started:
            node.stop()


class Switching(EncodedTrack):
    """Plays ``first`` then, from frame ``after``, ``second`` (another picture size),
    starting on its keyframe: a browser lowering its resolution under congestion."""

    def __init__(self, first: EncodedClip, second: EncodedClip, after: int) -> None:
        super().__init__(first)
        self.second, self.after = second, after

    async def recv(self) -> Any:
        if self.sent == self.after:
            self.clip = self.second
            self._offset = -self.sent % len(self.second.frames)
        return await super().recv()


async def publish(http: httpx.AsyncClient, tracks: list[tuple[EncodedTrack, str]]) -> tuple[
    MediaPeerConnection, str
]:  # fmt: skip
    pc = create_peer_connection()
    for track, codec in tracks:
        transceiver = pc.addTransceiver(track, direction="sendonly")
        transceiver.setCodecPreferences(codec_preferences(track.kind, codec))
        transceiver.sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
    await pc.setLocalDescription(await pc.createOffer())
    sdp = {**host_auth(), "Content-Type": "application/sdp"}
    answer = await http.post("/whip/r1", content=pc.localDescription.sdp, headers=sdp)
    assert answer.status_code == 201, answer.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
    return pc, answer.headers["location"]


def tracks(clips: list[EncodedClip]) -> list[tuple[EncodedTrack, str]]:
    return [(EncodedTrack(c), c.codec) for c in clips]


async def playlist(
    http: httpx.AsyncClient, path: str, *, segments: int, after: str = ""
) -> MediaPlaylist:
    """The playlist once it lists ``segments`` complete segments of its newest stream
    (one that is not ``after``)."""

    async def ready() -> MediaPlaylist | None:
        r = await http.get(path)
        if r.status_code != 200:
            return None
        pl = parse(r.text)
        stream = pl.entries[-1].map_uri.split("/")[0] if pl.entries else ""
        own = [e for e in pl.entries if e.complete and e.uri.startswith(stream)]
        return pl if len(own) >= segments and stream != after else None

    found: MediaPlaylist = await eventually(ready, within=40, step=0.2)
    return found


async def test_low_latency_hls_from_the_origin_and_another_node(
    nodes: tuple[Node, Node], clips: list[EncodedClip]
) -> None:
    """Parts, hold-back, a blocking reload held on either node until the part exists,
    directives checked, the multivariant playlist, then a re-publish: the sequence goes
    on after an EXT-X-DISCONTINUITY."""
    origin, other = nodes
    async with (
        httpx.AsyncClient(base_url=origin.url, timeout=15) as a,
        httpx.AsyncClient(base_url=other.url, timeout=15) as b,
    ):
        pc, resource = await publish(a, tracks(clips))
        try:
            await playlist(b, "/hls/r1/index.m3u8", segments=2)
            r = await b.get("/hls/r1/index.m3u8")
            first = strict_check(r.text)
            assert first.target == 3 and first.part_target == 0.5
            assert r.headers["cache-control"] == "public, max-age=1"

            # The next part, asked of the node that does not record: held, then answered.
            last = first.entries[-1]
            msn, part = (last.msn, len(last.parts)) if not last.complete else (last.msn + 1, 0)
            started = time.monotonic()
            held = await b.get(f"/hls/r1/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
            waited = time.monotonic() - started
            assert held.status_code == 200, held.text
            assert held.headers["cache-control"] == "public, max-age=18"
            got = strict_check(held.text, previous=first)
            assert any(e.msn > msn or (e.msn == msn and len(e.parts) > part)
                       for e in got.entries), "the answer lists the part asked for"  # fmt: skip
            assert waited < 9.0  # answered as the part came, not at the bound (3 x 3 s)
            # The hinted part, fetched through the other node before or as it is written.
            hinted = await b.get(f"/hls/r1/{got.hint}")
            assert (
                hinted.status_code == 200 and hinted.headers["content-type"] == "video/iso.segment"
            )
            # Delivery directives: refused with their codes, never held.
            for query, code in (("_HLS_part=1", "hls_bad_directive"),
                                ("_HLS_msn=abc", "hls_bad_directive"),
                                ("_HLS_skip=v2", "hls_bad_directive"),
                                (f"_HLS_msn={msn + 3}", "hls_too_far")):  # fmt: skip
                bad = await b.get(f"/hls/r1/index.m3u8?{query}")
                assert (bad.status_code, bad.json()["code"]) == (400, code), query
            assert (await a.get("/hls/r1/master.m3u8?_HLS_msn=1")).status_code == 400
            delta = await a.get("/hls/r1/index.m3u8?_HLS_skip=YES")
            assert delta.status_code == 200 and strict_check(delta.text).target == 3

            master = (await b.get("/hls/r1/master.m3u8")).text
            info = attributes(next(x for x in master.splitlines() if "STREAM-INF" in x)[18:])
            assert info["RESOLUTION"] == "320x240" and re.fullmatch(r"avc1\.42..1[45]",
                                                                    info["CODECS"])  # fmt: skip
            assert 28 <= float(info["FRAME-RATE"]) <= 31
            assert int(info["BANDWIDTH"]) >= int(info["AVERAGE-BANDWIDTH"]) > 50_000
            assert master.splitlines()[-1] == "index.m3u8"
        finally:
            await a.delete(resource, headers=host_auth())
            await pc.close()

        async def paused() -> MediaPlaylist | None:
            pl = parse((await a.get("/hls/r1/index.m3u8")).text)
            return pl if not pl.hint else None  # finished, and not ended: the room is live

        before: MediaPlaylist = await eventually(paused, within=20, step=0.2)
        assert not before.ended
        old_stream = before.entries[-1].map_uri.split("/")[0]

        pc, resource = await publish(a, tracks(clips))
        try:
            await playlist(a, "/hls/r1/index.m3u8", segments=1, after=old_stream)
            after = strict_check((await a.get("/hls/r1/index.m3u8")).text, previous=before)
            new_stream = after.entries[-1].map_uri.split("/")[0]
            first_new = next(e for e in after.entries if e.map_uri.startswith(new_stream))
            assert first_new.discontinuity
            assert first_new.msn == max(e.msn for e in before.entries if e.complete) + 1
            assert after.media_sequence == before.media_sequence
        finally:
            await pc.close()


async def test_a_resolution_change_starts_a_new_init_segment(
    nodes: tuple[Node, Node], clips: list[EncodedClip]
) -> None:
    """A publisher going from 320x240 to 160x120 mid-stream: the playlist's EXT-X-MAP
    changes to init-1.mp4 after a discontinuity, and that init describes 160x120."""
    origin, _ = nodes
    small = encode_video_clip("video/H264", frames=90, gop=60, size=(160, 120))
    async with httpx.AsyncClient(base_url=origin.url, timeout=15) as a:
        switching = Switching(clips[0], small, after=100)
        pc, _ = await publish(
            a, [(switching, "video/H264"), (EncodedTrack(clips[1]), "audio/opus")]
        )
        try:

            async def switched() -> MediaPlaylist | None:
                r = await a.get("/hls/r1/index.m3u8")
                if r.status_code != 200:
                    return None
                pl = parse(r.text)
                done = [e for e in pl.entries if e.complete and e.map_uri.endswith("init-1.mp4")]
                return pl if done else None

            pl = await eventually(switched, within=40, step=0.2)
            strict_check((await a.get("/hls/r1/index.m3u8")).text)
            new = next(e for e in pl.entries if e.map_uri.endswith("init-1.mp4"))
            assert new.discontinuity and new.independent
            init = await a.get(f"/hls/r1/{new.map_uri}")
            segment = await a.get(f"/hls/r1/{new.uri}")
            assert init.status_code == segment.status_code == 200
        finally:
            await pc.close()
    with av.open(io.BytesIO(init.content + segment.content)) as f:
        assert (f.streams.video[0].width, f.streams.video[0].height) == (160, 120)


LL_PLAY = """async (url) => {
  const { default: Hls } = await import('/static/vendor/hls.js');
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true;
  document.body.appendChild(video);
  window.hlsErrors = [];
  const hls = new Hls({ lowLatencyMode: true });
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.hlsErrors.push(d.details); });
  hls.loadSource(url); hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
  window.hlsVideo = video;
  return Hls.isSupported();
}"""


async def test_hls_js_plays_on_across_a_republish(
    nodes: tuple[Node, Node], clips: list[EncodedClip]
) -> None:
    """hls.js (Chromium, low-latency mode) playing the multivariant playlist keeps playing
    when the host publishes again: the discontinuity, not a restart of the sequence."""
    from playwright.async_api import async_playwright

    from tests.signalling.services.test_recording import browser_page

    origin, _ = nodes
    async with httpx.AsyncClient(base_url=origin.url, timeout=15) as a:
        pc, resource = await publish(a, tracks(clips))
        await playlist(a, "/hls/r1/index.m3u8", segments=1)
        async with async_playwright() as p:
            browser, page = await browser_page(p)
            try:
                await page.goto(f"{origin.url}/static/app.css")
                assert await page.evaluate(LL_PLAY, f"{origin.url}/hls/r1/master.m3u8")
                await wait_js(page, "window.hlsVideo.currentTime > 1 || window.hlsErrors.length",
                              30)  # fmt: skip
                await a.delete(resource, headers=host_auth())
                await pc.close()
                old = (await a.get("/hls/r1/index.m3u8")).text
                stream = parse(old).entries[-1].map_uri.split("/")[0]
                pc, resource = await publish(a, tracks(clips))
                await playlist(a, "/hls/r1/index.m3u8", segments=2, after=stream)
                at = await page.evaluate("window.hlsVideo.currentTime")
                # Plays into the new stream: well past where the first one ended.
                await wait_js(page, f"window.hlsVideo.currentTime > {at} + 3 || "
                                    "window.hlsErrors.length", 40)  # fmt: skip
                assert await page.evaluate("window.hlsErrors") == []
            finally:
                await browser.close()
                await pc.close()


async def test_every_rendition_continues_across_a_republish(
    nodes: tuple[Node, Node],
    layer_clips: dict[str, EncodedClip],  # noqa: F811
) -> None:
    """A simulcast host publishes again: each lower rendition's playlist, like the top
    one's, goes on numbering after the previous stream's segments, after a
    discontinuity (a restart at 0 stalls a player on that rendition)."""
    origin, _ = nodes

    async def simulcast(http: httpx.AsyncClient) -> tuple[SimulcastPublisher, str]:
        publisher = SimulcastPublisher([Layer(rid, c) for rid, c in layer_clips.items()])
        sdp = {**host_auth(), "Content-Type": "application/sdp"}
        answer = await http.post("/whip/r1", content=await publisher.offer(), headers=sdp)
        assert answer.status_code == 201, answer.text
        await publisher.accept(answer.text)
        return publisher, answer.headers["location"]

    async with httpx.AsyncClient(base_url=origin.url, timeout=15) as a:
        publisher, resource = await simulcast(a)
        try:
            before = await playlist(a, "/hls/r1/m_index.m3u8", segments=2)
            await a.delete(resource, headers=host_auth())
            await publisher.close()
            stream = before.entries[-1].map_uri.split("/")[0]
            publisher, resource = await simulcast(a)
            after = await playlist(a, "/hls/r1/m_index.m3u8", segments=1, after=stream)
            strict_check((await a.get("/hls/r1/m_index.m3u8")).text)
            old = [e.msn for e in after.entries if e.uri.startswith(stream)]
            new = [e for e in after.entries if not e.uri.startswith(stream) and e.complete]
            assert len(old) >= 2, after  # the previous stream's segments still listed
            assert new[0].msn == old[-1] + 1 and new[0].discontinuity, (old, new[0])
        finally:
            await publisher.close()


async def test_a_republish_at_another_node_continues_the_numbering(
    nodes: tuple[Node, Node], clips: list[EncodedClip]
) -> None:
    """The host publishes again through another node (its first one died, or the
    balancer sent it elsewhere): that node's playlist goes on after the numbers the
    first node used, with the discontinuity sequence one past its last segment's, so a
    player reloading the room's playlist sees a break, not a sequence that restarts."""
    a_node, b_node = nodes
    async with (
        httpx.AsyncClient(base_url=a_node.url, timeout=15) as a,
        httpx.AsyncClient(base_url=b_node.url, timeout=15) as b,
    ):
        pc, resource = await publish(a, tracks(clips))
        try:
            await playlist(a, "/hls/r1/index.m3u8", segments=2)
            await a.delete(resource, headers=host_auth())
            await pc.close()

            async def finished() -> MediaPlaylist | None:  # A closed its last segment
                pl = parse((await a.get("/hls/r1/index.m3u8")).text)
                return pl if not pl.hint else None

            first = await eventually(finished, within=15)
            last = max(e.msn for e in first.entries if e.complete)
            pc, resource = await publish(b, tracks(clips))
            text = ""

            async def continued() -> MediaPlaylist | None:
                nonlocal text
                r = await b.get("/hls/r1/index.m3u8")
                if r.status_code != 200:
                    return None
                text = r.text
                pl = parse(text)
                mine = [e for e in pl.entries if e.complete and e.msn > last]
                return pl if mine and "#EXT-X-PRELOAD-HINT" in text else None

            second = await eventually(continued, within=30)
            strict_check(text)
            assert second.media_sequence == last + 1, (last, text)
            assert second.discontinuity_seq >= first.discontinuity_seq + 1, text
        finally:
            await pc.close()
