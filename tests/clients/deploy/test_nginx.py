"""Three nodes behind Debian's nginx with the shipped configuration (clients/deploy):
the room channel, WHIP/WHEP, and recorded media through nginx's cache standing in for a
CDN. Every media URL of a live room answers 200 through nginx and from every node, each
HLS file is read from the node that wrote it once, and a viewer in Chromium watches the
HLS, a clip and the replay through nginx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.python.room import RoomClient
from tests.browser import PLAY_MUTED, launch, phone, wait_js
from tests.helpers import Node, create_room, free_port, token
from tests.media.sources import EncodedClip, encode_opus_clip, encode_video_clip
from tests.nginx import Nginx
from tests.signalling.routes.test_whip import frames_within, publish, watch
from tests.signalling.services.test_recording import HLS_PLAY, until

pytestmark = pytest.mark.timeout(300)
HOST = {"Authorization": f"Bearer {token('host', 'host1', ttl=3600)}"}


@dataclass
class Front:
    """What the WHIP/WHEP test helpers need of a node: its URL (here, nginx's)."""

    url: str


@dataclass
class Cluster:
    nodes: list[Node]
    nginx: Nginx

    @property
    def url(self) -> str:
        return self.nginx.url


@pytest.fixture(scope="module")
def clips() -> list[EncodedClip]:
    return [encode_video_clip("video/H264", frames=150, gop=60), encode_opus_clip(5.0)]


@pytest.fixture
def cluster(tmp_path: Path, redis_url: str) -> Iterator[Cluster]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    nodes: list[Node] = []
    try:
        for name in ("a", "b", "c"):
            node = Node(tmp_path / name, redis_url=redis_url)
            node.extra_args = ["--node-id", f"node-{name}", "--public-url", public,
                               "--node-url", node.url, "--record-segment", "2",
                               "--end-grace", "2", "--trusted-proxy", "127.0.0.1"]  # fmt: skip
            nodes.append(node.start())
        nginx = Nginx(tmp_path / "nginx", [f"127.0.0.1:{n.port}" for n in nodes], port=port)
        yield Cluster(nodes, nginx.start())
        nginx.stop()
    finally:
        for node in nodes:
            node.stop()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a counter's samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
            total += float(m.group(2))
    return total


async def metric_sum(nodes: list[Node], name: str, **labels: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        texts = [(await http.get(f"{n.url}/metrics")).text for n in nodes]
    return sum(metric(t, name, **labels) for t in texts)


async def test_every_media_url_through_nginx_and_from_every_node(
    cluster: Cluster, clips: list[EncodedClip]
) -> None:
    """A host publishes through nginx; viewers play through nginx (landing on the three
    nodes: cascade); every HLS file answers 200 through nginx (its origin read once, the
    cache serving the rest) and from each node directly; clip files likewise."""
    base = cluster.url
    create_room(base)
    front = Front(base)
    host = RoomClient(base, "r1", token("host", "host1"))
    audience = RoomClient(base, "r1", token("viewer", "a1"))
    await host.connect()
    await audience.connect()
    pc, answer = await publish(front, clips)  # type: ignore[arg-type]
    assert answer.status_code == 201, answer.text
    while (await audience.next_event(wait=20))["t"] != "stream_started":
        pass  # every node finds the origin once its connection is up
    viewers = [await watch(front, f"v{i}") for i in range(3)]  # type: ignore[arg-type]
    try:
        for viewer, _ in viewers:
            assert await frames_within(viewer, 10, 20), viewer.received
        # A session's PATCH answers on every node (passed on to the node holding it).
        async with httpx.AsyncClient(timeout=10) as http:
            for i, (_, played) in enumerate(viewers):
                for node in cluster.nodes:
                    trickled = await http.patch(
                        node.url + played.headers["location"], content="a=end-of-candidates\r\n",
                        headers={"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*",
                                 "Authorization": f"Bearer {token('viewer', f'v{i}')}"},
                    )  # fmt: skip
                    assert trickled.status_code == 204, (node.url, trickled.text)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def playlist() -> str | None:
                r = await http.get("/hls/r1/index.m3u8")
                return r.text if r.status_code == 200 and r.text.count("#EXTINF") >= 3 else None

            text = await until(playlist, 40)
            uris = [line for line in text.splitlines() if line and not line.startswith("#")]
            init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
            files = [f"/hls/r1/{u}" for u in uris + ([init.group(1)] if init else [])]
            assert len(files) >= 4, text
            before = await metric_sum(cluster.nodes, "livecore_media_reads_total", kind="segment")
            for _ in range(4):  # round robin: every node is asked for each file
                for path in files:
                    r = await http.get(path)
                    assert r.status_code == 200, (path, r.text)
                    assert "immutable" in r.headers["cache-control"]
            after = await metric_sum(cluster.nodes, "livecore_media_reads_total", kind="segment")
            assert after - before == len(files)  # each file read at its origin once
            hits = cluster.nginx.access_log().count(" 200 ")
            assert hits >= 4 * len(files)

        # Every node answers every URL itself (own disk or streamed through).
        async with httpx.AsyncClient(timeout=10) as direct:
            for node in cluster.nodes:
                for path in ["/hls/r1/index.m3u8", *files]:
                    r = await direct.get(node.url + path)
                    assert r.status_code == 200, (node.url, path, r.text)
                part = await direct.get(node.url + files[0], headers={"Range": "bytes=0-9"})
                assert part.status_code == 206 and len(part.content) == 10
                whole = await direct.get(node.url + files[1])
                head = await direct.head(node.url + files[1])
                assert head.status_code == 200 and head.content == b""
                assert head.headers["content-length"] == str(len(whole.content))
            assert await metric_sum(cluster.nodes, "livecore_media_forwards_total",
                                    result="ok") >= 2 * len(files)  # fmt: skip
            # A node-to-node request needs a node token for the room, and is never
            # forwarded again.
            bad = await direct.get(cluster.nodes[0].url + files[0],
                                   headers={"X-Livecore-Node-Token": "nonsense"})  # fmt: skip
            assert bad.status_code == 401 and bad.json()["code"] == "token_malformed"

        # The viewers leave: each DELETE through nginx reaches its session's node.
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for i, (_, played) in enumerate(viewers):
                auth = {"Authorization": f"Bearer {token('viewer', f'v{i}')}"}
                gone = await http.delete(played.headers["location"], headers=auth)
                assert gone.status_code == 200, gone.text
                again = await http.delete(played.headers["location"], headers=auth)
                assert again.status_code == 404 and again.json()["code"] == "session_not_found"

        # A clip: its files answer through nginx and from every node.
        # The mark goes to the recording node (marks reaching it from any node are
        # another part of the media-across-nodes work).
        recorder = next(n for n in cluster.nodes if (n.data_dir / "media/rec/r1").is_dir())
        async with httpx.AsyncClient(timeout=10) as http:
            marked = await http.post(f"{recorder.url}/api/rooms/r1/mark", headers=HOST)
            assert marked.status_code == 202, marked.text
        while (event := await audience.next_event(wait=40))["t"] != "clip_ready":
            pass
        clip = event["clip"]
        async with httpx.AsyncClient(timeout=10) as http:
            for url in [base] + [n.url for n in cluster.nodes]:
                for path in (clip["video"], clip["thumbnail"]):
                    r = await http.get(url + path)
                    assert r.status_code == 200, (url, path)
                    assert "immutable" in r.headers["cache-control"]
        await watch_in_chromium(base, clip)

        # The host ends the live: a replay, versioned and immutable, from anywhere.
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            ended = await http.post("/api/rooms/r1/end", headers=HOST)
            assert ended.status_code == 200

            async def replay() -> str | None:
                room: dict[str, Any] = (await http.get("/api/rooms/r1")).json()
                return room.get("replay") or None

            url = await until(replay, 30)
            for origin in [base] + [n.url for n in cluster.nodes]:
                r = await http.get(origin + url)
                assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        await replay_in_chromium(base)
    finally:
        for viewer, _ in viewers:
            await viewer.close()
        await pc.close()
        await host.close()
        await audience.close()


async def watch_in_chromium(base: str, clip: dict[str, Any]) -> None:
    """A phone plays the live HLS (hls.js, as the viewer page's fallback does) and then
    the clip's share page, through nginx; nothing on either page goes wrong."""
    async with launch() as browser:
        page, watch = await phone(browser)
        watch.allowed.append("/favicon.ico")  # a stylesheet opened as the player's page
        await page.goto(f"{base}/static/app.css")
        assert await page.evaluate(HLS_PLAY, f"{base}/hls/r1/index.m3u8")
        await wait_js(page, "window.hlsVideo.currentTime > 1 || window.hlsErrors.length", 30)
        assert await page.evaluate("window.hlsErrors") == []
        share, share_watch = await phone(browser)
        await share.goto(f"{base}{clip['share']}")
        assert await share.evaluate(PLAY_MUTED, "clip")
        await wait_js(share, "document.getElementById('clip').currentTime > 0.5", 20)
        assert watch.errors() == [] and share_watch.errors() == []


async def replay_in_chromium(base: str) -> None:
    """A neighbour opens the ended room's page through nginx and plays its replay."""
    async with launch() as browser:
        viewer, watch = await phone(browser)
        await viewer.goto(f"{base}/r/r1")
        await wait_js(viewer, "!document.querySelector('#replay').hidden", 30)
        await viewer.click("#replay")
        await wait_js(viewer, "document.querySelector('#player').currentTime > 1", 20)
        assert watch.errors() == []


def test_the_shipped_configuration_is_complete() -> None:
    """Every placeholder the operator fills in is in the file, and nothing else is left."""
    from tests.nginx import CONFIG, render

    text = render(Path("/srv/nginx"), "127.0.0.1:80", ["198.51.100.1:8080", "198.51.100.2:8080"])
    assert "__" not in text.replace("__init__", "")
    assert "server 198.51.100.2:8080;" in text
    assert 'proxy_set_header X-Livecore-Node-Token "";' in CONFIG.read_text()
