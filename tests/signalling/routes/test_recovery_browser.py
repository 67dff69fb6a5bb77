"""The pages recover a lost connection without a reload (loopback, real Chromium).

The network lab (tests/netlab/test_recovery.py) cuts real links; here the
page logic is driven directly and fast: a viewer whose peer connection dies
posts a new WHEP session; a viewer page told the network changed restarts ICE
of its WHEP session in place (PATCH answered 200); a host page told the network changed restarts ICE
on the same session (PATCH answered 200); a host whose restart is refused
publishes anew and the viewer page follows ``stream_ended`` ``replaced`` and
``stream_started`` onto the new stream. The pure helpers (backoff, the
fragments of an ICE restart) are checked in the page too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.browser import Watch, chromium_path, phone, wait_js
from tests.helpers import Node, create_room, token
from tests.signalling.routes.pagekit import LIVE, clean, frames_decoded, go_live

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    chromium_path()
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)
    yield node
    node.stop()


async def live(browser: Browser, node: Node) -> tuple[Page, Watch, Page, Watch]:
    host, host_watch = await phone(browser)
    await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host)
    viewer, viewer_watch = await phone(browser)
    await viewer.goto(f"{node.url}/r/r1#token={token('viewer', 'v1')}")
    await wait_js(viewer, LIVE)
    await frames_decoded(viewer, "host1", 5)
    await viewer.evaluate("window.notReloaded = true")
    return host, host_watch, viewer, viewer_watch


PLAYER = "window.livecore.stage.players.get('host1')"
#: The host player's selected candidate pair: its id and the bytes received on it.
SELECTED = f"""(async () => {{
  const stats = await {PLAYER}.session.pc.getStats();
  let out = null;
  stats.forEach((r) => {{
    if (r.type !== 'transport' || !r.selectedCandidatePairId) return;
    const pair = stats.get(r.selectedCandidatePairId);
    out = {{id: r.selectedCandidatePairId, bytes: pair.bytesReceived}};
  }});
  return out;
}})()"""
NOTE = "document.querySelector('.recovery-note:not([hidden])')?.textContent || ''"


async def test_a_dead_player_gets_a_new_session(node: Node, browser: Browser) -> None:
    """The viewer's peer connection dies: the page says it is reconnecting, posts a new
    WHEP session at once and decodes the host's video again, without a reload."""
    _, host_watch, viewer, viewer_watch = await live(browser, node)
    await viewer.evaluate(f"window.dead = {PLAYER}.session; window.dead.pc.close()")
    await wait_js(viewer, f"{PLAYER}.session !== window.dead", 10)
    await wait_js(viewer, f"{PLAYER}.session.pc.connectionState === 'connected'", 10)
    await frames_decoded(viewer, "host1", 5)
    await wait_js(viewer, f"!({NOTE})", 10)
    assert await viewer.evaluate("window.notReloaded === true")
    # The dead session's DELETE may find it gone already (the node noticed first).
    assert clean(viewer_watch, "/whep/r1/") == [] and clean(host_watch) == []


async def test_a_player_restarts_ice_in_place_on_a_network_change(
    node: Node, browser: Browser
) -> None:
    """An `online` event on the viewer page: its WHEP session restarts ICE by PATCH (200, a
    new ETag, RFC 9725 §4.4), the same session goes on decoding on the new path
    (Chromium's restart gathers new sockets: the node's RTP followed it), no new POST."""
    _, host_watch, viewer, viewer_watch = await live(browser, node)
    calls: list[tuple[str, int]] = []
    viewer.on(
        "response",
        lambda r: calls.append((r.request.method, r.status)) if "/whep/" in r.url else None,
    )
    await viewer.evaluate(f"window.kept = {PLAYER}.session; window.tag = window.kept.etag")
    before = await viewer.evaluate(SELECTED)
    await viewer.evaluate("window.dispatchEvent(new Event('online'))")
    await wait_js(viewer, f"{PLAYER}.session.etag !== window.tag && !{PLAYER}.retrying", 15)
    # The media arrives on the new generation's pair (not only on the old one, which
    # Chromium keeps open for a while): the node re-routed the viewer's RTP.
    moved = f"(async () => {{ const p = await {SELECTED}; return !!p && p.id !== {before['id']!r}"
    await wait_js(viewer, moved + " && p.bytes > 100000; })()", 15)
    frames = await frames_decoded(viewer, "host1", 1)
    await frames_decoded(viewer, "host1", frames + 30)
    assert calls == [("PATCH", 200)]
    assert await viewer.evaluate(f"{PLAYER}.session === window.kept && !{PLAYER}.lostAt")
    assert await viewer.evaluate("window.notReloaded === true")
    assert clean(host_watch) == [] and clean(viewer_watch) == []


async def test_the_host_restarts_ice_on_a_network_change(node: Node, browser: Browser) -> None:
    """An `online` event on the host page: ICE restart by PATCH (200, a new ETag), the
    same WHIP session, the viewer keeps its session and its video."""
    host, host_watch, viewer, viewer_watch = await live(browser, node)
    patches: list[int] = []
    host.on("response", lambda r: patches.append(r.status) if r.request.method == "PATCH" else None)
    before = await host.evaluate(
        "[window.livecore.stage.publishing.location, window.livecore.stage.publishing.etag]"
    )
    await viewer.evaluate(f"window.kept = {PLAYER}.session")
    await host.evaluate("window.dispatchEvent(new Event('online'))")
    await wait_js(host, "window.livecore.stage.recovering === null && "
                  f"window.livecore.stage.publishing.etag !== {before[1]!r}", 15)  # fmt: skip
    after = await host.evaluate(
        "((p) => [p.location, p.pc.connectionState])(window.livecore.stage.publishing)"
    )
    assert patches == [200]
    assert after == [before[0], "connected"], "the same session, connected again"
    frames = await frames_decoded(viewer, "host1", 1)
    await frames_decoded(viewer, "host1", frames + 30)
    assert await viewer.evaluate(f"{PLAYER}.session === window.kept")
    assert clean(host_watch) == [] and clean(viewer_watch) == []


async def test_a_refused_restart_publishes_anew_and_viewers_follow(
    node: Node, browser: Browser
) -> None:
    """The restart is refused (412: a stale ETag): the host page posts a new WHIP offer
    (no DELETE), the room hears replaced + started, the viewer page plays the new
    stream without a reload; both pages show live all along."""
    host, host_watch, viewer, viewer_watch = await live(browser, node)
    methods: list[tuple[str, int]] = []
    host.on(
        "response",
        lambda r: methods.append((r.request.method, r.status)) if "/whip/" in r.url else None,
    )
    old = await host.evaluate("window.livecore.stage.publishing.location")
    await viewer.evaluate(f"window.old = {PLAYER}.session")
    await host.evaluate("window.livecore.stage.publishing.etag = '\"stale\"';"
                        "window.dispatchEvent(new Event('online'))")  # fmt: skip
    await wait_js(host, f"window.livecore.stage.publishing.location !== {old!r}", 15)
    await wait_js(host, "window.livecore.stage.recovering === null", 15)
    await wait_js(viewer, f"{PLAYER} && {PLAYER}.session !== window.old", 15)
    await frames_decoded(viewer, "host1", 5)
    assert ("PATCH", 412) in methods and ("POST", 201) in methods
    assert not any(m == "DELETE" for m, _ in methods), "publishing anew never DELETEs"
    assert await viewer.evaluate("window.notReloaded === true")
    assert await viewer.evaluate("document.querySelector('#room-status').dataset.status") == "live"
    assert await host.evaluate("document.querySelector('#room-status').dataset.status") == "live"
    assert clean(host_watch, "/whip/r1/") == [] and clean(viewer_watch, "/whep/r1/") == []


async def test_hls_meanwhile_then_back_to_webrtc_after_retry_after(
    tmp_path: Path, redis_url: str, browser: Browser
) -> None:
    """A node full for WebRTC (503 node_full, Retry-After: 5): the viewer page plays HLS
    and asks again only after Retry-After; once a place frees it plays WebRTC again."""
    chromium_path()
    node = Node(tmp_path / "full", redis_url=redis_url, extra_args=["--media-max-sessions", "2"])
    node.start()
    try:
        create_room(node.url)
        host, _ = await phone(browser)
        await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
        await go_live(host)
        first, _ = await phone(browser)
        await first.goto(f"{node.url}/r/r1#token={token('viewer', 'v1')}")
        await frames_decoded(first, "host1", 5)
        second, watch = await phone(browser)
        posts: list[tuple[float, int]] = []
        # When each POST started, by the browser's own clock (the test's event loop hears
        # of responses late on a loaded machine, which shortened the gaps it measured).
        second.on(
            "response",
            lambda r: (
                posts.append((r.request.timing["startTime"] / 1000, r.status))
                if r.request.method == "POST" and "/whep/" in r.url
                else None
            ),
        )
        await second.goto(f"{node.url}/r/r1#token={token('viewer', 'v2')}")
        await wait_js(second, "!!(window.livecore.stage && window.livecore.stage.hls)", 20)
        await wait_js(second, "!!document.querySelector('#player').src")
        await first.close()  # its WHEP session is DELETEd: a place frees
        await wait_js(second, f"{PLAYER}?.session?.pc.connectionState === 'connected'", 20)
        await wait_js(second, "!window.livecore.stage.hls", 10)
        await frames_decoded(second, "host1", 5)
        assert await second.evaluate(
            f"document.querySelector('#player').srcObject === {PLAYER}.session.stream"
        )
    finally:
        node.stop()
    refused = [at for at, status in posts if status == 503]
    assert refused and posts[-1][1] == 201, posts
    gaps = [
        b - a for a, b in zip([at for at, _ in posts], [at for at, _ in posts][1:], strict=False)
    ]
    assert all(gap >= 4.9 for gap in gaps), f"Retry-After: 5 honoured: {gaps}"
    assert clean(watch, "/whep/r1", "/hls/r1") == []


PURE = """async () => {
  const r = await import('/static/recovery.js');
  const m = await import('/static/media.js');
  const sdp = (...lines) => lines.join('\\r\\n') + '\\r\\n';
  const ice = (u, p) => [`a=ice-ufrag:${u}`, `a=ice-pwd:${p}`];
  const host1 = 'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host';
  const offer = sdp('v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0', ...ice('NEWU', 'NEWPWDNEWPWDNEWPWDNEWPW'), host1,
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:1', ...ice('NEWU', 'NEWPWDNEWPWDNEWPWDNEWPW'));
  const answer = sdp('v=0', 's=-',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0', ...ice('old', 'oldpwd'),
    'a=candidate:9 1 udp 1 127.0.0.1 40000 typ host', 'a=end-of-candidates',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:1', ...ice('old', 'oldpwd'));
  const frag = sdp('m=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0', ...ice('srv2', 'srvpwd2'),
    'a=candidate:7 1 udp 1 127.0.0.1 40000 typ host', 'a=end-of-candidates');
  return {
    backoff: [0, 1, 2, 3, 4, 5, 9].map((n) => [r.backoff(n, () => 0), r.backoff(n, () => 1)]),
    retry: r.retryDelay({ retryAfter: 3 }, 1, () => 0),
    offerFrag: m.offerFragment(offer),
    applied: m.applyAnswerFragment(answer, frag),
    retryAfter: [m.retryAfterSeconds('2'), m.retryAfterSeconds(null), m.retryAfterSeconds('soon')],
  };
}"""


async def test_backoff_and_restart_fragments(node: Node, browser: Browser) -> None:
    """Backoff doubles from 0.25 s to a 2 s cap with jitter (half to all of a step);
    Retry-After wins; the restart offer's fragment carries the bundle section's mid,
    new credentials and candidates; the answer fragment replaces ICE lines everywhere."""
    page, _ = await phone(browser)
    await page.goto(f"{node.url}/healthz")
    got = await page.evaluate(PURE)
    assert got["backoff"] == [[0, 0], [125, 250], [250, 500], [500, 1000], [1000, 2000],
                              [1000, 2000], [1000, 2000]]  # fmt: skip
    assert got["retry"] == 3000
    assert got["offerFrag"].split("\r\n") == [
        "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:0", "a=ice-ufrag:NEWU",
        "a=ice-pwd:NEWPWDNEWPWDNEWPWDNEWPW",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
        "a=end-of-candidates", "",
    ]  # fmt: skip
    applied = got["applied"]
    assert "old" not in applied and applied.count("a=ice-ufrag:srv2") == 2
    assert applied.count("a=candidate:7 1 udp 1 127.0.0.1 40000 typ host") == 2
    assert "a=candidate:9" not in applied
    assert got["retryAfter"] == [2, None, None]
