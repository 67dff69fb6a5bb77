"""A real browser as the WHIP/WHEP client of PATCH, on another origin: headless Chromium.

The pages are served at another origin than the node's, so every request is
cross-origin and the ones with a token or If-Match are preflighted. As a
WHEP client, Chromium reads a 400's error code, posts an offer made before
gathering (no candidates), trickles its candidates in one PATCH with the
ETag of the 201, and decodes the stream of an aiortc publisher. As a WHIP
publisher (its fake camera), it restarts ICE (``restartIce()``, PATCH with
``If-Match: *``, the 200's fragment applied to its remote description) and
an aiortc viewer keeps decoding through it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from aiortc import RTCSessionDescription
from playwright.async_api import Browser

from tests.browser import chromium_path, wait_js
from tests.helpers import Node, create_room, token
from tests.media.sources import Viewer, encode_video_clip, publisher_offer
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

TRICKLE_CLIENT = """async ({node, bearer}) => {
  const auth = {Authorization: 'Bearer ' + bearer};
  const out = {};
  const bad = await fetch(node + '/whep/r1', {method: 'POST', body: 'v=0\\r\\nx',
    headers: {...auth, 'Content-Type': 'application/sdp'}});
  out.bad = [bad.status, (await bad.json()).code];
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  pc.addTransceiver('video', {direction: 'recvonly'});
  const candidates = [];
  const gathered = new Promise((resolve) => {
    pc.onicecandidate = (e) => e.candidate ? candidates.push(e.candidate) : resolve();
  });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  out.offered = (offer.sdp.match(/a=candidate/g) || []).length;
  const made = await fetch(node + '/whep/r1', {method: 'POST', body: offer.sdp,
    headers: {...auth, 'Content-Type': 'application/sdp'}});
  out.created = made.status;
  const etag = made.headers.get('ETag');
  out.etag = etag;
  const resource = new URL(made.headers.get('Location'), node + '/whep/r1').href;
  await pc.setRemoteDescription({type: 'answer', sdp: await made.text()});
  await gathered;
  const ufrag = offer.sdp.match(/a=ice-ufrag:(\\S+)/)[1];
  const pwd = offer.sdp.match(/a=ice-pwd:(\\S+)/)[1];
  let frag = `m=video 9 UDP/TLS/RTP/SAVPF 96\\r\\na=mid:${pc.getTransceivers()[0].mid}\\r\\n` +
    `a=ice-ufrag:${ufrag}\\r\\na=ice-pwd:${pwd}\\r\\n`;
  for (const c of candidates) frag += 'a=' + c.candidate + '\\r\\n';
  frag += 'a=end-of-candidates\\r\\n';
  const patched = await fetch(resource, {method: 'PATCH', body: frag,
    headers: {...auth, 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': etag}});
  out.patched = patched.status;
  out.trickled = candidates.length;
  return out;
}"""

PUBLISHER = """async ({node, bearer}) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: true});
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
  window.pc = pc;
  pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly'});
  await pc.setLocalDescription(await pc.createOffer());
  await window.gathered(pc);
  const made = await fetch(node + '/whip/r1', {method: 'POST', body: pc.localDescription.sdp,
    headers: {Authorization: 'Bearer ' + bearer, 'Content-Type': 'application/sdp'}});
  window.resource = new URL(made.headers.get('Location'), node + '/whip/r1').href;
  window.etag = made.headers.get('ETag');
  await pc.setRemoteDescription({type: 'answer', sdp: await made.text()});
  return made.status;
}"""

GATHERED = """() => { window.gathered = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === 'complete') return resolve();
  pc.addEventListener('icegatheringstatechange',
    () => pc.iceGatheringState === 'complete' && resolve());
}); }"""

RESTART = r"""async ({bearer}) => {
  const pc = window.pc;
  const pick = (sdp, name) => sdp.match(new RegExp('a=' + name + ':(\\S+)'))[1];
  pc.restartIce();
  await pc.setLocalDescription(await pc.createOffer());
  await window.gathered(pc);
  const sdp = pc.localDescription.sdp;
  const ufrag = pick(sdp, 'ice-ufrag'), pwd = pick(sdp, 'ice-pwd');
  const lines = sdp.split('\r\n');
  let frag = lines.find((l) => l.startsWith('m=')) + '\r\n' +
    `a=mid:${pc.getTransceivers()[0].mid}\r\na=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\n`;
  for (const l of lines) if (l.startsWith('a=candidate:')) frag += l + '\r\n';
  frag += 'a=end-of-candidates\r\n';
  const res = await fetch(window.resource, {method: 'PATCH', body: frag, headers: {
    Authorization: 'Bearer ' + bearer, 'Content-Type': 'application/trickle-ice-sdpfrag',
    'If-Match': '*'}});
  const text = await res.text();
  const out = {status: res.status, etag: res.headers.get('ETag'), old: window.etag,
    type: res.headers.get('Content-Type'), ufrag, body: text};
  if (res.status !== 200) return out;
  // The answer stays; only its ICE credentials and candidates are the fragment's.
  const theirs = text.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
  const answer = [];
  let placed = false;
  for (const l of pc.currentRemoteDescription.sdp.split('\r\n')) {
    if (l.startsWith('a=candidate:') || l.startsWith('a=end-of-candidates')) continue;
    if (l.startsWith('a=ice-ufrag:')) answer.push('a=ice-ufrag:' + pick(text, 'ice-ufrag'));
    else if (l.startsWith('a=ice-pwd:')) {
      answer.push('a=ice-pwd:' + pick(text, 'ice-pwd'));
      if (!placed) { answer.push(...theirs, 'a=end-of-candidates'); placed = true; }
    } else answer.push(l);
  }
  await pc.setRemoteDescription({type: 'answer', sdp: answer.join('\r\n')});
  return out;
}"""

ON_NEW_ICE = """(async () => {
  let ok = false;
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'transport' && r.iceLocalUsernameFragment === window.newUfrag &&
        r.iceState === 'connected' && r.dtlsState === 'connected') ok = true;
  });
  return ok;
})()"""

DECODED = """(async () => {
  let frames = 0;
  (await window.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames >= 10 ? frames : 0;
})()"""


class ShopPage(BaseHTTPRequestHandler):
    """A blank page of a shop's own site (another origin than the node's)."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>shop</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def shop() -> Iterator[str]:
    """The origin of the shop's page: a real server on loopback (Chromium lets a loopback
    page, not a public one, reach the node on loopback: Local Network Access)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def media_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    chromium_path()
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)
    yield node
    node.stop()


async def test_browser_trickles_a_whep_session_from_another_origin(
    media_node: Node, browser: Browser, shop: str
) -> None:
    """Chromium on another origin reads a 400's code, trickles its candidates by PATCH
    (204) after a candidate-less offer, and decodes the publisher's frames."""
    pc, offer = await publisher_offer([encode_video_clip("video/H264", frames=90, gop=30)])
    context = await browser.new_context()
    try:
        async with httpx.AsyncClient() as http:
            created = await http.post(f"{media_node.url}/whip/r1", content=offer, headers={
                "Content-Type": "application/sdp",
                "Authorization": f"Bearer {token('host', 'host1')}",
            })  # fmt: skip
        assert created.status_code == 201, created.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))

        page = await context.new_page()
        await page.goto(f"{shop}/live")
        out = await page.evaluate(
            TRICKLE_CLIENT, {"node": media_node.url, "bearer": token("viewer", "v1")}
        )
        assert out["bad"] == [400, "bad_sdp"], out
        assert out["offered"] == 0 and out["created"] == 201 and out["etag"], out
        assert out["patched"] == 204 and out["trickled"] >= 1, out
        assert await wait_js(page, DECODED, timeout_s=20)
    finally:
        await context.close()
        await pc.close()


async def test_browser_publisher_restarts_ice_and_viewers_keep_playing(
    media_node: Node, browser: Browser, shop: str
) -> None:
    """Chromium publishes, then restarts ICE by PATCH (200, the answer fragment, a new
    ETag): its transport runs on the new credentials, the same session goes on, and
    an aiortc viewer keeps decoding for longer than the consent expiry; the old ETag
    is stale (412)."""
    context = await browser.new_context()
    viewer = Viewer(("video",))
    node = media_node.url
    host = {"Authorization": f"Bearer {token('host', 'host1')}"}
    try:
        page = await context.new_page()
        await page.goto(f"{shop}/live")
        await page.evaluate(GATHERED)
        bearer = token("host", "host1")
        assert await page.evaluate(PUBLISHER, {"node": node, "bearer": bearer}) == 201
        async with httpx.AsyncClient(base_url=node) as http:

            async def live() -> bool:
                return bool((await http.get("/api/rooms/r1")).json()["status"] == "live")

            await eventually(live, within=15, what="the browser's stream is live")
            played = await http.post("/whep/r1", content=await viewer.offer(), headers={
                "Content-Type": "application/sdp",
                "Authorization": f"Bearer {token('viewer', 'v1')}",
            })  # fmt: skip
            assert played.status_code == 201, played.text
            await viewer.accept(played.text)
            await eventually(lambda: viewer.received["video"].frames >= 10, within=15)

            out = await page.evaluate(RESTART, {"bearer": bearer})
            assert out["status"] == 200, out
            assert out["type"].startswith("application/trickle-ice-sdpfrag")
            assert out["etag"] and out["etag"] != out["old"], out
            assert "a=end-of-candidates" in out["body"] and "a=candidate:" in out["body"]
            await page.evaluate("(u) => { window.newUfrag = u; }", out["ufrag"])
            assert await wait_js(page, ON_NEW_ICE, timeout_s=10)

            # Longer than the consent expiry (5 s): consent runs on the new credentials.
            restarted = viewer.received["video"].frames
            await eventually(
                lambda: viewer.received["video"].frames >= restarted + 8 * 25, within=20
            )
            assert await live()
            stale = await http.patch(
                await page.evaluate("window.resource"),
                content="a=end-of-candidates\r\n",
                headers=host | {"Content-Type": "application/trickle-ice-sdpfrag",
                                "If-Match": out["old"]},
            )  # fmt: skip
            assert stale.status_code == 412, stale.text
    finally:
        await viewer.close()
        await context.close()
