"""WHIP from a real browser, WHEP to a real browser: headless Chromium with a fake camera.

The host page publishes Chromium's fake camera (H.264 preferred, OpenH264 in
Debian's chromium) through WHIP; a viewer page in the same browser plays the
host through WHEP and must decode frames (checked with getStats). A KOC
page co-streams after the host accepts. Skipped without Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clients.python.room import RoomClient
from tests.browser import Browser, chromium_path
from tests.helpers import Node, create_room, token

pytestmark = pytest.mark.timeout(120)

MEDIA_FLAGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)
LIVE = "window.livecore && window.livecore.channel.status === 'live'"
DECODED = """(async () => {
  const entry = window.livecore.stage.players.get(__USER__);
  if (!entry || !entry.session) return 0;
  let frames = 0;
  (await entry.session.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames;
})()"""


@pytest.fixture
def media_page_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    chromium_path()
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)  # host user: host1
    yield node
    node.stop()


LEAN_STATS = """(async () => {
  const entry = window.livecore.stage.players.get('host1');
  const out = {video: 0, audio: 0, reports: []};
  (await entry.session.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') out.video += r.framesDecoded || 0;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.audio += r.totalSamplesReceived || 0;
    if (r.type === 'remote-outbound-rtp' && r.packetsSent > 0) out.reports.push(r.kind);
  });
  return out;
})()"""


def lean_frames(node: Node) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(r"^livecore_media_lean_frames_total (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


def decoded_at_least(user: str, frames: int) -> str:
    """JS: whether the page decoded at least ``frames`` video frames of ``user``."""
    return f"(async () => (await {DECODED.replace('__USER__', repr(user))}) >= {frames})()"


def codec_ops(node: Node) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(r"^livecore_media_codec_ops_total (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


async def test_browser_publishes_and_another_browser_plays(media_page_node: Node) -> None:
    """Chromium publishes with WHIP, a second page decodes the stream from WHEP."""
    await publish_and_play(media_page_node)


async def test_browsers_on_one_shared_udp_port(tmp_path: Path, redis_url: str) -> None:
    """The same through --udp-mux: both browser sessions reach the node on one UDP port."""
    from tests.media.test_forwarder import free_range

    chromium_path()
    port, _ = free_range(1)
    node = Node(tmp_path / "mux", redis_url=redis_url, extra_args=["--udp-mux", str(port)])
    node.start()
    try:
        create_room(node.url)
        await publish_and_play(node)
    finally:
        node.stop()


async def publish_and_play(node: Node) -> None:
    async with Browser.launch(extra_flags=MEDIA_FLAGS) as browser:
        host = await browser.new_page(1280, 800, mobile=False, scale=1)
        await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
        await host.wait_for(LIVE)
        await host.click("#golive")
        await host.wait_for("!!window.livecore.stage.publishing", wait=20)
        viewer = await browser.new_page()
        await viewer.goto(f"{node.url}/r/r1#token={token('viewer', 'v1')}")
        await viewer.wait_for(LIVE)
        await viewer.wait_for(decoded_at_least("host1", 10), wait=30)
        playing = await viewer.evaluate(
            "document.querySelector('#player').getVideoPlaybackQuality().totalVideoFrames"
        )
        assert playing > 0
        # Through the lean path: video decoded, audio played, RTCP sender reports for both.
        wanted = "(async () => { const s = await " + LEAN_STATS + "; "
        wanted += (
            "return s.audio > 0 && s.reports.includes('audio') && s.reports.includes('video'); })()"
        )
        await viewer.wait_for(wanted, wait=15)
        assert lean_frames(node) > 0
        assert host.errors == [] and viewer.errors == []
    assert codec_ops(node) == 0


async def test_koc_costreams_from_a_browser(media_page_node: Node) -> None:
    """A KOC page asks, the host accepts, the KOC's camera reaches the host page."""
    node = media_page_node
    accepted = RoomClient(node.url, "r1", token("host", "host1"))
    await accepted.connect()
    try:
        async with Browser.launch(extra_flags=MEDIA_FLAGS) as browser:
            koc = await browser.new_page()
            await koc.goto(f"{node.url}/r/r1#token={token('koc', 'koc1')}")
            await koc.wait_for(LIVE)
            await koc.wait_for("!document.querySelector('#costream').hidden")
            await koc.click("#costream")
            kinds = []
            while "costream_requested" not in kinds:
                kinds.append((await accepted.next_event(wait=10))["t"])
            await accepted.request("costream_accept", user="koc1")
            await koc.wait_for("!!window.livecore.stage.publishing", wait=20)
            host = await browser.new_page(1280, 800, mobile=False, scale=1)
            await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
            await host.wait_for(LIVE)
            await host.wait_for(decoded_at_least("koc1", 5), wait=30)
            await accepted.request("costream_end", user="koc1")
            await koc.wait_for("!window.livecore.stage.publishing", wait=15)
    finally:
        await accepted.close()
