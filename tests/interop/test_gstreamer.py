"""A second WebRTC stack against a real node: GStreamer's webrtcbin, behaving as OBS does.

Neither Chromium nor aiortc: ``gstpeer.py`` (Debian's Python, PyGObject,
webrtcbin + libnice) publishes videotestsrc as H.264 constrained baseline with
a keyframe every 2 s (what OBS users are told to set) + Opus over WHIP, and
plays WHEP. Like OBS it never trickles (one complete offer after gathering, or
an offer without any candidate), requires 201 + Location, DELETEs expecting
200, reads ICE servers from ``Link`` and drops every keyframe request.

Shown here, on loopback only (the peer gathers on 127.0.0.1, no STUN unless a
test gives one): the GStreamer publisher goes live (the time is printed, run
with ``-s``), an aiortc viewer and Chromium decode it with no codec work in the
node; GStreamer plays aiortc's H.264 and VP8 and Chromium's stream; DELETE
answers 200 and ends the session; a node with ``--turn-url`` hands its ICE
servers to the client in ``Link`` (and through a real coturn, when installed,
the client publishes with relay candidates only).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCSessionDescription
from playwright.async_api import Browser

from clients.python.room import RoomClient
from loadtests.coturn import Coturn, coturn_available, start_coturn
from tests.browser import chromium_path, phone
from tests.helpers import Node, create_room, free_port, missing, token
from tests.interop.gstreamer import Event, GstPeer, require_gstreamer
from tests.media.sources import (
    EncodedClip,
    Viewer,
    encode_opus_clip,
    encode_video_clip,
    publisher_offer,
)
from tests.signalling.routes.pagekit import clean, frames_decoded, go_live, wait_event
from tests.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

#: Frames a viewer must decode: 2 s of 30 fps video, past the first keyframe interval.
FRAMES = 60


@pytest.fixture(scope="module")
def gst() -> Event:
    return require_gstreamer()


@pytest.fixture
def media_node(tmp_path: Path, redis_url: str, gst: Event) -> Iterator[Node]:
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)  # host user: host1
    yield node
    node.stop()


def metric(node: Node, name: str) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match.group(1))


async def room_status(node: Node) -> str:
    async with httpx.AsyncClient() as http:
        return str((await http.get(f"{node.url}/api/rooms/r1")).json()["status"])


async def until_live(node: Node, within: float = 15.0) -> None:
    async def live() -> bool:
        return await room_status(node) == "live"

    await eventually(live, within=within, step=0.02, what="the room goes live")


#: The DTLS role gstpeer takes: GStreamer 1.22's certificate is RSA, and the node
#: (aiortc) as DTLS client offers ECDSA cipher suites only, so gstpeer offers
#: ``a=setup:active`` (see test_an_actpass_offer_with_an_rsa_certificate_fails).
ACTIVE = ("--setup", "active")


async def publish_gst(node: Node, tmp_path: Path, *args: str) -> GstPeer:
    """The OBS-like publisher (DTLS client unless ``args`` say otherwise)."""
    if "--setup" not in args:
        args = (*ACTIVE, *args)
    return await GstPeer.start("publish", f"{node.url}/whip/r1", token("host", "host1"), *args,
                               log_dir=tmp_path)  # fmt: skip


async def play_gst(node: Node, tmp_path: Path, user: str = "gst-viewer") -> GstPeer:
    return await GstPeer.start("play", f"{node.url}/whep/r1", token("viewer", user), *ACTIVE,
                               log_dir=tmp_path)  # fmt: skip


async def aiortc_viewer(node: Node, user: str) -> Viewer:
    viewer = Viewer(("audio", "video"))
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{node.url}/whep/r1", content=await viewer.offer(),
            headers={"Content-Type": "application/sdp",
                     "Authorization": f"Bearer {token('viewer', user)}"},
        )  # fmt: skip
    assert answer.status_code == 201, answer.text
    await viewer.accept(answer.text)
    return viewer


async def delete_again(node: Node, location: str, role: str, user: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        bearer = {"Authorization": f"Bearer {token(role, user)}"}
        return await http.delete(node.url + location, headers=bearer)


async def stop_and_check_gone(peer: GstPeer, node: Node, role: str, user: str) -> None:
    """The peer DELETEs its session (200, exit 0); a second DELETE finds nothing (404)."""
    assert await peer.stop() == 0, (peer.events[-5:], peer.stderr())
    assert peer.last("deleted")["status"] == 200
    again = await delete_again(node, peer.last("created")["location"], role, user)
    assert again.status_code == 404 and again.json()["code"] == "session_not_found"


def addresses(entries: list[str]) -> list[str]:
    """The address of each ``transport address port type`` entry of gstpeer's events."""
    return [entry.split()[1] for entry in entries]


@pytest.mark.parametrize("candidates", ["all", "none"])
async def test_gstreamer_publishes_and_aiortc_decodes(
    media_node: Node, tmp_path: Path, candidates: str, gst: Event
) -> None:
    """A complete offer (every candidate, no trickle) or one without any candidate goes
    live; an aiortc viewer decodes its H.264 and Opus at once although the publisher
    drops keyframe requests; no codec work in the node; DELETE 200 ends the stream."""
    node = media_node
    async with RoomClient(node.url, "r1", token("viewer", "watcher")) as watcher:
        began = time.monotonic()
        # keyframes 8 s apart: a viewer that had to wait for the next one would show it,
        # one served the node's cached keyframe starts at once
        publisher = await publish_gst(node, tmp_path, "--candidates", candidates, "--keyint-s", "8")
        viewer: Viewer | None = None
        try:
            created = await publisher.wait_for("created")
            assert created["status"] == 201 and created["etag"]
            assert created["location"].startswith("/whip/r1/")
            sent = addresses(publisher.last("offer")["candidates"])
            assert sent == ([] if candidates == "none" else ["127.0.0.1"])
            answered = await publisher.wait_for("answered")
            assert set(addresses(answered["candidates"])) == {"127.0.0.1"}
            await until_live(node)
            live_at = time.monotonic()
            live_s, post_to_live_s = live_at - began, live_at - created["m"]
            await wait_event(watcher, lambda e: e["t"] == "stream_started")
            connected = await publisher.wait_for(
                "connection", match=lambda e: e["state"] == "connected"
            )

            asked = time.monotonic()
            viewer = await aiortc_viewer(node, "v1")
            video = viewer.received["video"]
            await eventually(lambda: video.frames >= FRAMES, within=15, what="decoded frames")
            await eventually(lambda: viewer.received["audio"].frames > 0, within=10, what="audio")
            assert video.first_at is not None
            first_s = video.first_at - asked
            assert first_s < 3.5, "a new viewer starts on the node's cached keyframe"
            assert video.sizes == {(640, 360)}
            assert metric(node, "livecore_media_codec_ops") == 0
            stats = publisher.last("stats")

            await stop_and_check_gone(publisher, node, "host", "host1")
            await wait_event(watcher, lambda e: e["t"] == "stream_ended" and e["user"] == "host1")
        finally:
            await publisher.close()
            if viewer is not None:
                await viewer.close()
    print(
        f"\n[gstreamer {gst['gstreamer']} {gst['encoder']}, candidates={candidates}] "
        f"time to live {live_s:.2f} s from process start, {post_to_live_s:.2f} s from its POST's "
        f"answer (POST at {created['t']:.2f} s, answered in {created['post_s'] * 1000:.0f} ms, "
        f"connected {connected['m'] - created['m']:.2f} s after); "
        f"aiortc viewer: first frame {first_s * 1000:.0f} ms after its POST, {video.frames} "
        f"frames; publisher sent {stats['sent_video']} frames, {stats['sent_keyframes']} "
        f"keyframes, dropped {stats['keyframe_requests_dropped']} keyframe requests"
    )


async def test_keyframe_requests_are_dropped_and_viewers_still_start(
    media_node: Node, tmp_path: Path
) -> None:
    """With a keyframe every 5 s (longer than the advice), the node's keyframe requests
    (a viewer joining, the recorder's 2 s segments) reach the publisher and are dropped,
    as OBS drops them; keyframes stay at the encoder's interval, and a viewer joining
    mid-GOP still decodes at once from the node's cached keyframe."""
    node = media_node
    publisher = await publish_gst(node, tmp_path, "--keyint-s", "5")
    viewer: Viewer | None = None
    try:
        await until_live(node)
        # Early in the GOP (the first keyframe went out when the encoder started): a
        # viewer that had to wait for the next keyframe would wait 4.5 s.
        await publisher.stats_reach("sent_video", 15)
        asked = time.monotonic()
        viewer = await aiortc_viewer(node, "v1")
        video = viewer.received["video"]
        await eventually(lambda: video.frames >= 1, within=10, what="a first frame")
        assert video.first_at is not None
        first_s = video.first_at - asked
        dropped = await publisher.stats_reach("keyframe_requests_dropped", 1, within=15)
        await eventually(lambda: video.frames >= FRAMES, within=15, what="decoded frames")
        stats = publisher.last("stats")
        # Frames 0, 150, 300...: no more keyframes than the interval makes.
        assert stats["sent_keyframes"] <= (stats["sent_video"] - 1) // 150 + 1, stats
        await stop_and_check_gone(publisher, node, "host", "host1")
    finally:
        await publisher.close()
        if viewer is not None:
            await viewer.close()
    assert first_s < 3.0, f"first frame {first_s:.2f} s after the viewer's POST"
    print(
        f"\n[keyframe every 5 s] first frame {first_s * 1000:.0f} ms after a mid-GOP viewer's "
        f"POST; {dropped['keyframe_requests_dropped']} request(s) dropped by {dropped['t']:.1f} s, "
        f"{stats['keyframe_requests_dropped']} in all; {stats['sent_keyframes']} keyframes in "
        f"{stats['sent_video']} frames"
    )


async def test_chromium_plays_the_gstreamer_publisher(
    media_node: Node, tmp_path: Path, browser: Browser
) -> None:
    """The viewer page in Chromium decodes the GStreamer publisher's H.264."""
    chromium_path()
    node = media_node
    publisher = await publish_gst(node, tmp_path)
    try:
        await until_live(node)
        page, watch = await phone(browser)
        began = time.monotonic()
        await page.goto(f"{node.url}/r/r1")
        frames = await frames_decoded(page, "host1", FRAMES)
        took = time.monotonic() - began
        assert clean(watch) == []
        await stop_and_check_gone(publisher, node, "host", "host1")
        await page.close()
    finally:
        await publisher.close()
    print(f"\n[chromium viewer of gstreamer] {frames} frames decoded {took:.2f} s after opening "
          "the page")  # fmt: skip


@pytest.fixture(scope="module")
def clips() -> dict[str, EncodedClip]:
    return {
        "h264": encode_video_clip("video/H264", frames=90, gop=30),
        "vp8": encode_video_clip("video/VP8", frames=90, gop=30),
        "opus": encode_opus_clip(3.0),
    }


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_gstreamer_plays_an_aiortc_publisher(
    media_node: Node, tmp_path: Path, codec: str, clips: dict[str, EncodedClip]
) -> None:
    """GStreamer plays WHEP from an aiortc publisher (H.264 or VP8, and Opus), decoding
    every kind; its DELETE answers 200 and the session is gone."""
    node = media_node
    pc, offer = await publisher_offer([clips[codec], clips["opus"]])
    player: GstPeer | None = None
    try:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{node.url}/whip/r1", content=offer,
                headers={"Content-Type": "application/sdp",
                         "Authorization": f"Bearer {token('host', 'host1')}"},
            )  # fmt: skip
        assert answer.status_code == 201, answer.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
        await until_live(node)
        player = await play_gst(node, tmp_path)
        created = await player.wait_for("created")
        assert created["status"] == 201 and created["location"].startswith("/whep/r1/")
        first = await player.wait_for("first_frame", match=lambda e: e["kind"] == "video")
        assert first["size"] == [320, 240]
        stats = await player.stats_reach("video", FRAMES)
        await player.stats_reach("audio", 25)
        tracks = {e["kind"]: e["codec"] for e in player.events if e["event"] == "track"}
        assert tracks == {"video": {"h264": "H264", "vp8": "VP8"}[codec], "audio": "OPUS"}
        await stop_and_check_gone(player, node, "viewer", "gst-viewer")
    finally:
        if player is not None:
            await player.close()
        await pc.close()
    print(f"\n[gstreamer plays aiortc {codec}] first frame {first['t'] - created['t']:.2f} s "
          f"after the 201, {stats['video']} frames at {stats['t']:.2f} s")  # fmt: skip


async def test_gstreamer_plays_a_chromium_publisher(
    media_node: Node, tmp_path: Path, browser: Browser
) -> None:
    """GStreamer plays WHEP from the host page publishing Chromium's fake camera."""
    chromium_path()
    node = media_node
    host, watch = await phone(browser)
    await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
    await go_live(host)
    player = await play_gst(node, tmp_path)
    try:
        created = await player.wait_for("created")
        assert created["status"] == 201
        stats = await player.stats_reach("video", FRAMES, within=20)
        await player.stats_reach("audio", 25)
        codec = next(e["codec"] for e in player.events if e["event"] == "track"
                     and e["kind"] == "video")  # fmt: skip
        await stop_and_check_gone(player, node, "viewer", "gst-viewer")
        assert clean(watch) == []
    finally:
        await player.close()
        await host.close()
    print(f"\n[gstreamer plays chromium] {codec}, {stats['video']} frames at {stats['t']:.2f} s")


async def test_a_refused_post_fails_the_client(media_node: Node, tmp_path: Path) -> None:
    """No 201 (a viewer's token on WHIP: 403): the client stops with an error, exit 1,
    and never DELETEs (it has no session), as OBS reports a failed connection."""
    publisher = await GstPeer.start("publish", f"{media_node.url}/whip/r1",
                                    token("viewer", "v1"), *ACTIVE, log_dir=tmp_path)  # fmt: skip
    try:
        created = await publisher.wait_for("created")
        assert created["status"] == 403 and created["location"] is None
        assert '"token_wrong_role"' in created["body"]
        assert await asyncio.wait_for(publisher.proc.wait(), 10) == 1
        assert publisher.find("error") is not None and publisher.find("deleted") is None
        assert await room_status(media_node) == "scheduled"
    finally:
        await publisher.close()


async def test_an_actpass_offer_with_an_rsa_certificate_goes_live(
    media_node: Node, tmp_path: Path
) -> None:
    """An offer with ``a=setup:actpass`` (as OBS sends) from a peer whose DTLS certificate
    is RSA (GStreamer 1.22): the node takes the DTLS client role and offers the RSA
    suites too (media.aiortc_seams.srtp), so the handshake completes and it goes live."""
    publisher = await publish_gst(media_node, tmp_path, "--setup", "actpass")
    try:
        await publisher.wait_for("connection", 10, lambda e: e["state"] == "connected")
        await until_live(media_node)
    finally:
        await publisher.close()


# -- ICE servers from Link -------------------------------------------------------

#: One TURN server as gstpeer read it from a Link header (RFC 9725 §4.6).
TURN_USER = re.compile(r"\d+:host1")


def check_servers(servers: list[dict[str, str]], stun: str, turns: list[str]) -> None:
    assert [s["urls"] for s in servers] == [stun, *turns], servers
    for server in servers[1:]:
        assert TURN_USER.fullmatch(server["username"]), server
        assert server["credential"] and server["credential-type"] == "password"


async def test_ice_servers_reach_the_client_in_link(
    tmp_path: Path, redis_url: str, gst: Event
) -> None:
    """A node with --turn-url/--stun-url (no TURN server needs to run) hands them to the
    OBS-like client in Link headers of an authenticated OPTIONS and of the 201; the
    client parses them (and, not using them, still goes live on loopback)."""
    secret = tmp_path / "turn.secret"
    secret.write_text("s" * 32)
    port = free_port()
    stun = f"stun:127.0.0.1:{port}"
    turns = [f"turn:127.0.0.1:{port}?transport=udp", f"turn:127.0.0.1:{port}?transport=tcp"]
    args = ["--stun-url", stun, "--turn-secret-file", str(secret)]
    for url in turns:
        args += ["--turn-url", url]
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=args).start()
    publisher: GstPeer | None = None
    try:
        create_room(node.url)
        publisher = await publish_gst(node, tmp_path, "--options")
        check_servers((await publisher.wait_for("options"))["ice_servers"], stun, turns)
        created = await publisher.wait_for("created")
        assert created["status"] == 201
        check_servers(created["ice_servers"], stun, turns)
        await until_live(node)
        await stop_and_check_gone(publisher, node, "host", "host1")
    finally:
        if publisher is not None:
            await publisher.close()
        node.stop()


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    if not coturn_available():
        missing("turnserver not installed (make system installs coturn)")
    relay = start_coturn("127.0.0.1", workdir=tmp_path_factory.mktemp("coturn"))
    yield relay
    relay.stop()


async def test_gstreamer_publishes_through_turn_from_link(
    tmp_path: Path, redis_url: str, gst: Event, coturn: Coturn
) -> None:
    """With the servers read from Link and relay candidates only, the client's media goes
    through a real coturn on loopback: the room goes live and an aiortc viewer decodes."""
    args = ["--turn-url", coturn.urls["udp"], "--turn-secret-file", str(coturn.secret_file)]
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=args).start()
    publisher: GstPeer | None = None
    viewer: Viewer | None = None
    try:
        create_room(node.url)
        publisher = await publish_gst(node, tmp_path, "--options", "--apply-ice-servers",
                                      "--relay-only")  # fmt: skip
        offer: dict[str, Any] = await publisher.wait_for("offer")
        assert offer["candidates"] and all(c.endswith(" relay") for c in offer["candidates"])
        await until_live(node)
        viewer = await aiortc_viewer(node, "v1")
        video = viewer.received["video"]
        await eventually(lambda: video.frames >= FRAMES, within=15, what="decoded frames")
        await stop_and_check_gone(publisher, node, "host", "host1")
    finally:
        if publisher is not None:
            await publisher.close()
        if viewer is not None:
            await viewer.close()
        node.stop()
    print(f"\n[gstreamer through coturn] relay candidates {offer['candidates']}")
