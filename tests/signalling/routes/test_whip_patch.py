"""WHIP/WHEP in the field: trickle ICE by PATCH, ETags, connect and consent deadlines,
CORS on errors, Location under a path prefix. A real node, real aiortc peers, loopback."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiortc import RTCSessionDescription

from clients.python.room import RoomClient
from tests.helpers import Node, create_room, token
from tests.media.iceclient import MovedIce
from tests.media.sources import (
    EncodedClip,
    Viewer,
    blackhole,
    encode_video_clip,
    publisher_offer,
    trickled,
)
from tests.waiting import eventually

SDP = {"Content-Type": "application/sdp"}
FRAG = {"Content-Type": "application/trickle-ice-sdpfrag"}
#: What docs/protocol.md promises: a peer that stopped answering consent checks is
#: closed within 7 s (5 s after its last answer, noticed at the next check: <= 1.2 s
#: later, plus that check's 0.5 s timeout).
VANISHED_WITHIN_S = 7.0


@pytest.fixture(scope="module")
def h264() -> EncodedClip:
    return encode_video_clip("video/H264", frames=90, gop=30)


@pytest.fixture
def media_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)
    yield node
    node.stop()


def auth(role: str, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user)}"}


def sessions(node: Node, kind: str) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    found = re.search(rf'^livecore_media_sessions{{kind="{kind}"}} (\S+)$', text, re.M)
    assert found is not None
    return float(found.group(1))


async def no_sessions(node: Node, kind: str) -> bool:
    return await asyncio.to_thread(sessions, node, kind) == 0


async def live(node: Node) -> bool:
    async with httpx.AsyncClient() as http:
        return bool((await http.get(f"{node.url}/api/rooms/r1")).json()["status"] == "live")


def cors(answer: httpx.Response) -> bool:
    """The answer carries what a page on another origin needs to read it."""
    exposed = answer.headers.get("access-control-expose-headers", "")
    return answer.headers.get("access-control-allow-origin") == "*" and all(
        name in exposed for name in ("Location", "ETag", "Link")
    )


async def test_trickle_after_a_candidate_less_offer(media_node: Node, h264: EncodedClip) -> None:
    """A WHIP publisher and a WHEP viewer post offers without candidates (201 with an
    ETag), PATCH them with If-Match (204, no ETag), connect and play."""
    pc, full = await publisher_offer([h264])
    offer, frag = trickled(full)
    viewer = Viewer(("video",))
    async with httpx.AsyncClient(base_url=media_node.url) as http:
        try:
            created = await http.post(
                "/whip/r1", content=offer, headers=SDP | auth("host", "host1")
            )
            assert created.status_code == 201, created.text
            etag = created.headers["etag"]
            assert re.fullmatch(r'"[0-9a-f]{16}"', etag) and cors(created)
            location = created.headers["location"]
            patched = await http.patch(
                location, content=frag, headers=FRAG | auth("host", "host1") | {"If-Match": etag}
            )
            assert patched.status_code == 204, patched.text
            assert "etag" not in patched.headers and patched.content == b""
            await pc.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            await eventually(lambda: live(media_node), within=10, what="the room goes live")

            viewer_offer, viewer_frag = trickled(await viewer.offer())
            played = await http.post(
                "/whep/r1", content=viewer_offer, headers=SDP | auth("viewer", "v1")
            )
            assert played.status_code == 201, played.text
            tag = played.headers["etag"]
            assert tag != etag
            patched = await http.patch(
                played.headers["location"], content=viewer_frag,
                headers=FRAG | auth("viewer", "v1") | {"If-Match": tag},
            )  # fmt: skip
            assert patched.status_code == 204, patched.text
            await viewer.accept(played.text)
            await eventually(lambda: viewer.received["video"].frames >= 10, within=10)
        finally:
            await viewer.close()
            await pc.close()


async def test_patch_refusals_change_nothing(media_node: Node, h264: EncodedClip) -> None:
    """Bad fragments, missing or stale ETags, an ICE restart of a WHEP session by another
    user, another user's token, an unknown session: each its status and code, CORS headers on each,
    and the live sessions keep playing."""
    pc, offer = await publisher_offer([h264])
    viewer = Viewer(("video",))
    async with httpx.AsyncClient(base_url=media_node.url) as http:
        try:
            created = await http.post(
                "/whip/r1", content=offer, headers=SDP | auth("host", "host1")
            )
            assert created.status_code == 201, created.text
            await pc.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            url, etag = created.headers["location"], created.headers["etag"]
            played = await http.post("/whep/r1", content=await viewer.offer(),
                                     headers=SDP | auth("viewer", "v1"))  # fmt: skip
            await viewer.accept(played.text)
            await eventually(lambda: viewer.received["video"].frames >= 3, within=10)
            watched = played.headers["location"]

            host = auth("host", "host1")
            good = FRAG | host | {"If-Match": etag}
            ufrag = re.search(r"a=ice-ufrag:(\S+)", offer)
            assert ufrag is not None
            restart = (
                "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:ysXw\r\n"
                "a=ice-pwd:vw5LmwG4y/e6dPP/zAP9Gp5k\r\n"
            )
            end = "a=end-of-candidates"
            bad_candidate = "m=audio 9 X 1\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ"

            async def patch(body: str, headers: dict[str, str], to: str = url) -> httpx.Response:
                return await http.patch(to, content=body, headers=headers)

            cases = [
                (await patch(end, SDP | host | {"If-Match": etag}), 415, "unsupported_media_type"),
                (await patch("hello", good), 400, "bad_sdpfrag"),
                (await patch(bad_candidate, good), 400, "bad_sdpfrag"),
                (await patch(end, FRAG | host), 428, "precondition_required"),
                (await patch(end, FRAG | host | {"If-Match": '"stale"'}), 412,
                 "precondition_failed"),
                (await patch(restart, FRAG | auth("koc", "koc1") | {"If-Match": "*"}, watched),
                 403, "token_wrong_role"),
                (await patch(end, FRAG | auth("koc", "koc1") | {"If-Match": etag}), 403,
                 "token_wrong_role"),
                (await patch(end, FRAG | auth("viewer", "v1") | {"If-Match": etag}), 403,
                 "token_wrong_role"),
                (await patch(end, FRAG | {"If-Match": etag}), 401, "token_missing"),
                (await patch(end, good, "/whip/r1/0123"), 404, "session_not_found"),
                (await patch(end, good, url.replace("/whip/", "/whep/")), 404, "session_not_found"),
            ]  # fmt: skip
            for answer, status, code in cases:
                assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
                assert cors(answer), answer.headers
            assert "line 1" in cases[1][0].json()["message"]
            assert "typ" in cases[2][0].json()["message"]

            # Nothing changed: the same ETag still trickles, and the viewer still plays.
            ok = await http.patch(url, content=f"a=ice-ufrag:{ufrag.group(1)}\r\n", headers=good)
            assert ok.status_code == 204, ok.text
            before = viewer.received["video"].frames
            await eventually(lambda: viewer.received["video"].frames >= before + 10, within=10)
        finally:
            await viewer.close()
            await pc.close()


async def test_whep_viewer_restarts_ice_and_plays_on_its_new_path(
    media_node: Node, h264: EncodedClip
) -> None:
    """A WHEP viewer whose network changed restarts ICE in place (RFC 9725 §4.4): PATCH
    with new credentials and candidates from a new socket, 200 with the answer fragment
    and a new ETag; its old socket closes, and the same session decodes on past the
    consent expiry (the node's RTP and consent checks followed the new pair); the old
    ETag is stale (412)."""
    pc, offer = await publisher_offer([h264])
    viewer = Viewer(("video",))
    async with httpx.AsyncClient(base_url=media_node.url) as http:
        try:
            created = await http.post("/whip/r1", content=offer,
                                      headers=SDP | auth("host", "host1"))  # fmt: skip
            await pc.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            played = await http.post("/whep/r1", content=await viewer.offer(),
                                     headers=SDP | auth("viewer", "v1"))  # fmt: skip
            assert played.status_code == 201, played.text
            await viewer.accept(played.text)
            await eventually(lambda: viewer.received["video"].frames >= 10, within=10)

            moved = await MovedIce.start(viewer.pc)
            mid = viewer.pc.getTransceivers()[0].mid
            assert mid is not None
            old_tag = played.headers["etag"]
            restarted = await http.patch(
                played.headers["location"], content=moved.fragment(mid),
                headers=FRAG | auth("viewer", "v1") | {"If-Match": old_tag},
            )  # fmt: skip
            assert restarted.status_code == 200, restarted.text
            assert restarted.headers["content-type"].startswith(FRAG["Content-Type"])
            assert restarted.headers["etag"] not in ("", old_tag)
            assert "a=end-of-candidates" in restarted.text and cors(restarted)
            await moved.finish(restarted.text)

            # Longer than the consent expiry (5 s), on the new socket only.
            since = viewer.received["video"].frames
            await eventually(lambda: viewer.received["video"].frames >= since + 8 * 25, within=20)
            assert viewer.pc.connectionState == "connected"
            assert await asyncio.to_thread(sessions, media_node, "whep") == 1  # the same one
            stale = await http.patch(
                played.headers["location"], content="a=end-of-candidates\r\n",
                headers=FRAG | auth("viewer", "v1") | {"If-Match": old_tag},
            )  # fmt: skip
            assert stale.status_code == 412, stale.text
        finally:
            await viewer.close()
            await pc.close()


async def test_a_new_post_replaces_a_publisher(media_node: Node, h264: EncodedClip) -> None:
    """A publisher that posts a new offer (a client without ICE restart, or whose
    session is gone): the room hears stream_ended (replaced) then stream_started, and a
    viewer that reopens plays the new session."""
    room = RoomClient(media_node.url, "r1", token("viewer", "watcher"))
    await room.connect()
    first, offer = await publisher_offer([h264])
    second, again = await publisher_offer([h264])
    viewer = Viewer(("video",))
    try:
        async with httpx.AsyncClient(base_url=media_node.url) as http:
            created = await http.post(
                "/whip/r1", content=offer, headers=SDP | auth("host", "host1")
            )
            await first.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            while (await room.next_event(wait=10))["t"] != "stream_started":
                pass
            renewed = await http.post(
                "/whip/r1", content=again, headers=SDP | auth("host", "host1")
            )
            assert renewed.status_code == 201, renewed.text
            await second.setRemoteDescription(
                RTCSessionDescription(sdp=renewed.text, type="answer")
            )
            events = []
            while not events or events[-1]["t"] != "stream_started":
                event = await room.next_event(wait=10)
                if event["t"] in ("stream_ended", "stream_started"):
                    events.append(event)
            assert [(e["t"], e.get("reason")) for e in events] == [
                ("stream_ended", "replaced"), ("stream_started", None),
            ]  # fmt: skip
            old = await http.delete(created.headers["location"], headers=auth("host", "host1"))
            assert old.status_code == 404  # the first session is gone
            played = await http.post("/whep/r1", content=await viewer.offer(),
                                     headers=SDP | auth("viewer", "v1"))  # fmt: skip
            await viewer.accept(played.text)
            await eventually(lambda: viewer.received["video"].frames >= 5, within=10)
            assert await live(media_node)
    finally:
        await room.close()
        await viewer.close()
        await first.close()
        await second.close()


async def test_whep_session_that_never_connects_is_rolled_back(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """With --media-connect-timeout 1, a WHEP session whose viewer never does ICE is
    gone within about a second (10 s by default, the same deadline as WHIP)."""
    node = Node(tmp_path / "n", redis_url=redis_url,
                extra_args=["--media-connect-timeout", "1"]).start()  # fmt: skip
    pc, offer = await publisher_offer([h264])
    try:
        create_room(node.url)
        async with httpx.AsyncClient(base_url=node.url) as http:
            created = await http.post(
                "/whip/r1", content=offer, headers=SDP | auth("host", "host1")
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            await eventually(lambda: live(node), within=10, what="the room goes live")
            ghost = Viewer(("video",))
            ghost_offer = await ghost.offer()
            await ghost.close()  # it never answers a check
            played = await http.post(
                "/whep/r1", content=ghost_offer, headers=SDP | auth("viewer", "v1")
            )
            assert played.status_code == 201, played.text
            assert await asyncio.to_thread(sessions, node, "whep") == 1
            start = time.monotonic()
            await eventually(lambda: no_sessions(node, "whep"), within=5, what="rolled back")
            assert time.monotonic() - start < 3
            gone = await http.delete(played.headers["location"], headers=auth("viewer", "v1"))
            assert gone.status_code == 404
            assert await live(node)  # the publisher is untouched
    finally:
        await pc.close()
        node.stop()


async def test_vanished_viewer_and_publisher_are_noticed(
    media_node: Node, h264: EncodedClip
) -> None:
    """A viewer and then a publisher that vanish from the network (no DTLS close, no
    DELETE) are closed within VANISHED_WITHIN_S (ICE consent, RFC 7675); the room
    is told stream_ended. aioice alone held them ~30 s."""
    room = RoomClient(media_node.url, "r1", token("viewer", "watcher"))
    await room.connect()
    pc, offer = await publisher_offer([h264])
    viewer = Viewer(("video",))
    try:
        async with httpx.AsyncClient(base_url=media_node.url) as http:
            created = await http.post(
                "/whip/r1", content=offer, headers=SDP | auth("host", "host1")
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=created.text, type="answer"))
            played = await http.post("/whep/r1", content=await viewer.offer(),
                                     headers=SDP | auth("viewer", "v1"))  # fmt: skip
            await viewer.accept(played.text)
            await eventually(lambda: viewer.received["video"].frames >= 5, within=10)

        blackhole(viewer.pc)
        start = time.monotonic()
        await eventually(lambda: no_sessions(media_node, "whep"), within=15, step=0.1)
        held = time.monotonic() - start
        print(f"vanished viewer held {held:.1f} s")  # pytest -s shows the measurement
        assert held < VANISHED_WITHIN_S, held
        assert await asyncio.to_thread(sessions, media_node, "whip") == 1

        blackhole(pc)
        start = time.monotonic()
        while (ended := await room.next_event(wait=15))["t"] != "stream_ended":
            pass
        held = time.monotonic() - start
        print(f"vanished publisher held {held:.1f} s until stream_ended")
        assert held < VANISHED_WITHIN_S + 0.5, held  # + the withdraw's store round trips
        assert ended["reason"] == "lost", "vanished, not ended: the room waits for it"
        assert await live(media_node), "the end grace keeps the room live"
        assert await no_sessions(media_node, "whip")
    finally:
        await room.close()
        await viewer.close()
        await pc.close()


async def test_a_vanished_koc_keeps_its_grant(media_node: Node, h264: EncodedClip) -> None:
    """A KOC whose phone vanished is 'lost', not ended: no costream_ended, and its page
    may publish again without asking the host anew."""
    host = RoomClient(media_node.url, "r1", token("host", "host1"))
    koc = RoomClient(media_node.url, "r1", token("koc", "koc1"))
    await host.connect()
    await koc.connect()
    pcs = []
    try:
        await koc.request("costream_request")
        await host.request("costream_accept", user="koc1")
        async with httpx.AsyncClient(base_url=media_node.url) as http:
            pc, offer = await publisher_offer([h264])
            pcs.append(pc)
            made = await http.post("/whip/r1", content=offer, headers=SDP | auth("koc", "koc1"))
            assert made.status_code == 201, made.text
            await pc.setRemoteDescription(RTCSessionDescription(sdp=made.text, type="answer"))
            seen: list[tuple[str, str | None]] = []
            while ("stream_started", None) not in seen:
                event = await host.next_event(wait=15)
                seen.append((event["t"], event.get("reason")))
            blackhole(pc)
            while ("stream_ended", "lost") not in seen:
                event = await host.next_event(wait=15)
                seen.append((event["t"], event.get("reason")))
            assert ("costream_ended", None) not in seen, seen
            again, offer = await publisher_offer([h264])
            pcs.append(again)
            back = await http.post("/whip/r1", content=offer, headers=SDP | auth("koc", "koc1"))
            assert back.status_code == 201, back.text
    finally:
        await host.close()
        await koc.close()
        for pc in pcs:
            await pc.close()


async def test_cors_on_errors_and_preflights(media_node: Node) -> None:
    """Errors under /whip and /whep carry CORS headers (a page on another origin reads the
    code); preflights allow POST, PATCH and DELETE with If-Match."""
    async with httpx.AsyncClient(base_url=media_node.url) as http:
        answers = {
            400: await http.post("/whip/r1", content="v=0\r\nx", headers=SDP | auth("host", "h")),
            401: await http.post("/whip/r1", content="v=0", headers=SDP),
            403: await http.post("/whip/r1", content="v=0", headers=SDP | auth("viewer", "v")),
            404: await http.delete("/whep/r1/0123", headers=auth("viewer", "v")),
            415: await http.post("/whep/r1", content="v=0", headers=auth("viewer", "v")),
        }
        for status, answer in answers.items():
            assert answer.status_code == status, answer.text
            assert cors(answer), (status, answer.headers)
        assert answers[400].json()["code"] == "bad_sdp"
        for path in ("/whip/r1", "/whep/r1/0123"):
            preflight = await http.options(path, headers={
                "Origin": "https://shop.example", "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, content-type, if-match",
            })  # fmt: skip
            assert preflight.status_code == 204 and cors(preflight)
            methods = preflight.headers["access-control-allow-methods"]
            assert {"POST", "PATCH", "DELETE"} <= set(methods.replace(" ", "").split(","))
            assert "if-match" in preflight.headers["access-control-allow-headers"].lower()
        assert preflight.headers["accept-patch"] == "application/trickle-ice-sdpfrag"
        other = await http.get("/api/rooms/nope")
        assert "access-control-allow-origin" not in other.headers  # only the media endpoints


async def test_location_under_a_public_url_path(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """Behind a proxy that serves the node under /live, Location is /live/whip/..."""
    node = Node(tmp_path / "n", redis_url=redis_url)
    node.extra_args = ["--public-url", "https://shop.example/live/"]
    node.start()
    pc, offer = await publisher_offer([h264])
    try:
        create_room(node.url)
        async with httpx.AsyncClient(base_url=node.url) as http:
            created = await http.post(
                "/whip/r1", content=offer, headers=SDP | auth("host", "host1")
            )
            assert created.status_code == 201, created.text
            location = created.headers["location"]
            assert re.fullmatch(r"/live/whip/r1/[0-9a-f]{32}\.[0-9a-f]+", location), location
            # The proxy strips /live: the node itself answers the rest of the path.
            gone = await http.delete(location.removeprefix("/live"), headers=auth("host", "host1"))
            assert gone.status_code == 200
    finally:
        await pc.close()
        node.stop()
