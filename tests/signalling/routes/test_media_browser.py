"""WHIP from a real browser, WHEP to a real browser: headless Chromium with a fake camera.

The host page publishes Chromium's fake camera (H.264 preferred, OpenH264 in
Debian's chromium) through WHIP; viewer pages play it through WHEP and must
decode frames (getStats). A KOC co-streams after the host accepts and ends it
itself; the host ends the live (下播, confirmed) and viewers see the ended state. Every WHIP
and WHEP DELETE a page sends must find its session (no 404: the pages DELETE
before closing the peer connection). One browser for the module (Playwright).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser

from clients.python.room import RoomClient
from tests.browser import chromium_path, phone, shot, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.routes.pagekit import (
    LIVE,
    clean,
    frames_decoded,
    go_live,
    live_at_capacity,
    text_of,
    wait_event,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest.fixture
def media_page_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    chromium_path()
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)  # host user: host1
    yield node
    node.stop()


def codec_ops(node: Node) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(r"^livecore_media_codec_ops (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


LEAN_OK = """(async () => {
  const entry = window.livecore.stage.players.get('host1');
  let audio = 0; const reports = new Set();
  (await entry.session.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') audio += r.totalSamplesReceived || 0;
    if (r.type === 'remote-outbound-rtp' && r.packetsSent > 0) reports.add(r.kind);
  });
  return audio > 0 && reports.has('audio') && reports.has('video');
})()"""


def media_sessions(node: Node) -> float:
    """WHIP/WHEP sessions the node holds (its state gauge)."""
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(r'^livecore_state_entries\{structure="media_entries"\} (\S+)$', text, re.M)
    assert match is not None
    return float(match.group(1))


def lean_frames(node: Node) -> float:
    """Frames the node's lean forwarder sent (once per frame for all viewers of a track)."""
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(r"^livecore_media_lean_frames_total (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


async def test_browser_publishes_viewers_play_and_see_the_end(
    media_page_node: Node, browser: Browser
) -> None:
    """The host page goes live (badge 直播中), a guest viewer decodes the stream with no
    transcoding on the server; the host ends it and the viewer shows 直播已结束."""
    node = media_page_node
    host, host_watch = await phone(browser)
    await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host)
    assert await text_of(host, "#room-status") == "直播中"
    viewer, viewer_watch = await phone(browser)
    await viewer.goto(f"{node.url}/r/r1")
    await wait_js(viewer, LIVE)
    await frames_decoded(viewer, "host1", 10)
    await wait_js(
        viewer, "document.querySelector('#player').getVideoPlaybackQuality().totalVideoFrames > 0"
    )
    fit = await viewer.evaluate("getComputedStyle(document.querySelector('#player')).objectFit")
    assert fit == "contain", "letterboxed, never cropped"
    assert await text_of(viewer, "#room-status") == "直播中"
    # Through the lean path: audio played and RTCP sender reports for both kinds.
    deadline = time.monotonic() + 15
    while not await viewer.evaluate(LEAN_OK):
        assert time.monotonic() < deadline, "no audio or no sender reports through the lean path"
        await asyncio.sleep(0.2)
    assert lean_frames(node) > 0
    assert codec_ops(node) == 0

    deletes: list[int] = []
    host.on(
        "response", lambda r: deletes.append(r.status) if r.request.method == "DELETE" else None
    )
    await host.click("#golive")
    await wait_js(host, "document.querySelector('#end-dialog').open")  # 下播 asks first
    await host.click("#end-confirm")
    await wait_js(host, "!window.livecore.stage.publishing")
    await wait_js(viewer, "!document.querySelector('#ended').hidden")
    assert "直播已结束" in await text_of(viewer, "#ended")
    assert await text_of(viewer, "#room-status") == "已结束"
    # Ending the room closed its sessions on the server: the page DELETEs nothing
    # (a DELETE after the end would be a 404 in the console).
    assert deletes == [], "no DELETE after the room's end closed the session"
    await eventually(lambda: media_sessions(node) == 0, within=5)
    await shot(viewer, "viewer-ended")
    assert clean(host_watch) == [] and clean(viewer_watch) == []


async def test_koc_costreams_and_ends_it(media_page_node: Node, browser: Browser) -> None:
    """A KOC asks from the viewer page; the host accepts on the host page (a readable
    request); the KOC sees itself and the host, a viewer sees the second video as
    picture in picture; the KOC ends the co-stream and the tile leaves."""
    node = media_page_node
    host, host_watch = await phone(browser)
    await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host)
    koc, koc_watch = await phone(browser)
    await koc.goto(f"{node.url}/r/r1#token={token('koc', 'koc1')}")
    await wait_js(koc, LIVE)
    await wait_js(koc, "!document.querySelector('#costream').hidden")
    await koc.click("#costream")
    row = "#costream-list li[data-user='koc1']"
    await wait_js(host, f"!!document.querySelector({row!r})")
    assert "koc1 申请和你连麦" in await text_of(host, row)
    await host.click(f"{row} button.accept")
    await wait_js(koc, "!!window.livecore.stage.publishing", 20)
    await wait_js(koc, "!!document.querySelector('#guests .tile.self video').srcObject")
    await frames_decoded(koc, "host1", 5)
    assert not await koc.evaluate("document.querySelector('#costream-end').hidden")

    viewer, viewer_watch = await phone(browser)
    await viewer.goto(f"{node.url}/r/r1")
    await wait_js(viewer, LIVE)
    await frames_decoded(viewer, "koc1", 5)
    await wait_js(viewer, "!!document.querySelector('#guests .tile[data-user=\"koc1\"]')")
    assert "koc1" in await text_of(viewer, "#guests .tile .tile-name")
    await frames_decoded(host, "koc1", 5)
    await shot(viewer, "viewer-costream")

    async with RoomClient(node.url, "r1", token("viewer", "watcher")) as watcher:
        await koc.click("#costream-end")
        await wait_event(watcher, lambda e: e["t"] == "costream_ended" and e["user"] == "koc1")
    await wait_js(koc, "!window.livecore.stage.publishing")
    await wait_js(viewer, "!document.querySelector('#guests .tile')")
    await wait_js(koc, "!document.querySelector('#costream').hidden")
    for watch in (host_watch, koc_watch, viewer_watch):
        assert clean(watch) == []


#: Records every toast the page shows (they fade after a few seconds).
TOASTS = """window.toasts = [];
new MutationObserver(() => {
  const box = document.querySelector('#toast');
  if (box && box.classList.contains('show')) window.toasts.push(box.textContent);
}).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });"""


async def test_viewer_falls_back_to_hls_when_whep_is_refused(
    tmp_path: Path, redis_url: str, browser: Browser
) -> None:
    """A node at its media capacity answers WHEP with node_full: the viewer page switches
    to the room's HLS (/hls/{room}/master.m3u8, played with hls.js) instead of a black stage."""
    async with live_at_capacity(tmp_path, redis_url, browser) as (node, _host, host_watch):
        viewer, viewer_watch = await phone(browser)
        asked: list[str] = []
        viewer.on("request", lambda r: asked.append(r.url) if "/hls/" in r.url else None)
        await viewer.add_init_script(TOASTS)
        await viewer.goto(f"{node.url}/r/r1")
        await wait_js(viewer, "!!(window.livecore.stage && window.livecore.stage.hls)", 20)
        await wait_js(viewer, "window.toasts.some((t) => t.includes('流畅模式'))")
        await wait_js(viewer, "!!document.querySelector('#player').src")
        assert any(url.endswith("/hls/r1/master.m3u8") for url in asked)
        # Only the refused WHEP and the HLS playlist (served by the recorder when it runs).
        assert clean(viewer_watch, "/whep/r1", "/hls/r1") == []
        assert clean(host_watch) == []
