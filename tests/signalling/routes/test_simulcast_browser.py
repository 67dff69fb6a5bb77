"""Simulcast from a real browser: the host page publishes Chromium's fake camera as three
H.264 layers (rids h, m, l) over WHIP; the node answers with ``a=simulcast:recv`` and
receives every layer; a viewer page plays one of them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Response

from media.hlsplaylist import attributes
from tests.browser import chromium_path, phone, wait_js
from tests.helpers import Node, create_room, token
from tests.media.hlscheck import strict_check
from tests.signalling.routes.pagekit import LIVE, clean, frames_decoded, go_live
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    chromium_path()
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)  # host user: host1
    yield node
    node.stop()


def simulcast_event(node: Node, event: str) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(rf'^livecore_media_simulcast_events{{event="{event}"}} (\S+)$', text, re.M)
    assert match is not None, event
    return float(match.group(1))


# alone: on busy cores Chromium's encoder adapts (its 720p layer below the 360p one's
# rate), which reorders the renditions the master playlist ranks by measured bandwidth
@pytest.mark.alone
async def test_host_page_publishes_three_layers(node: Node, browser: Browser) -> None:
    """The WHIP answer receives h;m;l, the node learns the three rids and records each as
    a rendition of the multivariant playlist, a viewer decodes."""
    host, host_watch = await phone(browser)
    answers: list[str] = []

    async def keep_answer(response: Response) -> None:
        if "/whip/" in response.url and response.request.method == "POST":
            answers.append(await response.text())

    host.on("response", keep_answer)
    await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host)
    await eventually(lambda: answers, within=10.0)
    assert "a=simulcast:recv h;m;l" in answers[0]
    assert all(f"a=rid:{rid} recv" in answers[0] for rid in "hml")
    await eventually(
        lambda: simulcast_event(node, "layers_seen") >= 3, within=60.0, what="three rids"
    )

    # every layer is recorded: one rendition each in the multivariant playlist (ABR HLS
    # without transcoding), the top one first, each media playlist with segments
    async def renditions() -> list[str] | None:
        async with httpx.AsyncClient(base_url=node.url, timeout=5) as http:
            master = await http.get("/hls/r1/master.m3u8")
            lines = master.text.splitlines() if master.status_code == 200 else []
            uris = [lines[i + 1] for i, line in enumerate(lines)
                    if line.startswith("#EXT-X-STREAM-INF") and i + 1 < len(lines)]  # fmt: skip
            if len(uris) < 3:
                return None
            for uri in uris:
                media = await http.get(f"/hls/r1/{uri}")
                if media.status_code != 200 or "#EXTINF" not in media.text:
                    return None
            return uris

    uris = await eventually(renditions, within=60.0, what="three recorded renditions")
    assert uris[0] == "index.m3u8" and sorted(uris[1:]) == ["l_index.m3u8", "m_index.m3u8"]
    # each live media playlist reports where the other two renditions are (LL-HLS)
    async with httpx.AsyncClient(base_url=node.url, timeout=5) as http:
        for uri in uris:
            text = (await http.get(f"/hls/r1/{uri}")).text
            strict_check(text)
            reported = {attributes(x.partition(":")[2])["URI"] for x in text.splitlines()
                        if x.startswith("#EXT-X-RENDITION-REPORT:")}  # fmt: skip
            assert reported == set(uris) - {uri}, (uri, text[-400:])
    viewer, viewer_watch = await phone(browser)
    await viewer.goto(f"{node.url}/r/r1")
    await wait_js(viewer, LIVE)
    await frames_decoded(viewer, "host1", 10)
    assert clean(host_watch) == [] and clean(viewer_watch) == []
