"""WHIP publish and WHEP playback through a real node: aiortc peers over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.python.room import RoomClient
from media.peers import is_loopback
from tests.helpers import Node, create_room, token
from tests.media.sources import EncodedClip, Viewer, encode_opus_clip, encode_video_clip
from tests.media.sources import publisher_offer as make_offer


@pytest.fixture(scope="module")
def h264() -> EncodedClip:
    return encode_video_clip("video/H264", frames=90, gop=30)


@pytest.fixture(scope="module")
def vp8() -> EncodedClip:
    return encode_video_clip("video/VP8", frames=90, gop=30)


@pytest.fixture(scope="module")
def opus() -> EncodedClip:
    return encode_opus_clip(3.0)


@pytest.fixture
def media_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    create_room(node.url)
    yield node
    node.stop()


def auth(role: str, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user)}"}


async def whip(node: Node, offer: str, role: str = "host", user: str = "host1") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{node.url}/whip/r1", content=offer,
            headers={"Content-Type": "application/sdp", **auth(role, user)},
        )  # fmt: skip


async def whep(node: Node, offer: str, query: str = "", user: str = "v1") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{node.url}/whep/r1{query}", content=offer,
            headers={"Content-Type": "application/sdp", **auth("viewer", user)},
        )  # fmt: skip


#: The cascade test's ``--pull-idle`` (20 s by default).
PULL_IDLE_S = 4.0


def candidates(sdp: str) -> list[str]:
    return re.findall(r"a=candidate:\S+ \d+ \w+ \d+ (\S+) \d+ typ", sdp)


async def publish(node: Node, clips: list[EncodedClip], role: str = "host",
                  user: str = "host1") -> tuple[Any, httpx.Response]:  # fmt: skip
    pc, offer = await make_offer(clips)
    answer = await whip(node, offer, role, user)
    if answer.status_code == 201:
        from aiortc import RTCSessionDescription

        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
    return pc, answer


async def watch(node: Node, user: str, query: str = "") -> tuple[Viewer, httpx.Response]:
    viewer = Viewer(("audio", "video"))
    answer = await whep(node, await viewer.offer(), query, user)
    assert answer.status_code == 201, answer.text
    await viewer.accept(answer.text)
    return viewer, answer


async def frames_within(viewer: Viewer, count: int, seconds: float, kind: str = "video") -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while viewer.received[kind].frames < count:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def until_live(node: Node, seconds: float = 10.0) -> None:
    """Wait until the room is live (the publisher's connection came up)."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with httpx.AsyncClient() as http:
        while (await http.get(f"{node.url}/api/rooms/r1")).json()["status"] != "live":
            assert asyncio.get_running_loop().time() < deadline, "the room never went live"
            await asyncio.sleep(0.05)


def entries(node: Node, structure: str) -> float:
    """Entries of one of the node's bounded structures (``livecore_state_entries``)."""
    text = httpx.get(f"{node.url}/metrics").text
    pattern = rf'^livecore_state_entries\{{structure="{structure}"\}} (\S+)$'
    return float(re.search(pattern, text, re.M).group(1))  # type: ignore[union-attr]


def lean_frames(node: Node) -> float:
    """Frames the node's lean forwarder sent (once per frame for all viewers of a track)."""
    text = httpx.get(f"{node.url}/metrics").text
    return float(re.search(r"^livecore_media_lean_frames_total (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


def codec_ops(node: Node) -> float:
    text = httpx.get(f"{node.url}/metrics").text
    return float(re.search(r"^livecore_media_codec_ops (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize("codec", ["h264", "vp8"])
async def test_publish_and_play_without_transcoding(
    media_node: Node, codec: str, request: pytest.FixtureRequest, opus: EncodedClip
) -> None:
    """A WHIP publisher reaches three WHEP viewers that decode frames; no codec work in the node."""
    clip = request.getfixturevalue(codec)
    pc, answer = await publish(media_node, [clip, opus])
    assert answer.status_code == 201, answer.text
    assert answer.headers["content-type"].startswith("application/sdp")
    assert answer.headers["location"].startswith("/whip/r1/")
    assert candidates(answer.text) and all(is_loopback(a) for a in candidates(answer.text))
    await until_live(media_node)
    viewers = [await watch(media_node, f"v{i}") for i in range(3)]
    try:
        for viewer, _ in viewers:
            assert await frames_within(viewer, 15, 10), viewer.received
            assert await frames_within(viewer, 1, 10, "audio"), viewer.received
        assert codec_ops(media_node) == 0
    finally:
        for viewer, _ in viewers:
            await viewer.close()
        await pc.close()


async def test_late_viewer_starts_fast_and_delete_ends(
    media_node: Node, h264: EncodedClip, opus: EncodedClip
) -> None:
    """A viewer arriving mid-GOP decodes within a second; DELETE ends the publisher for all."""
    pc, answer = await publish(media_node, [h264])  # video only: the audio section is inactive
    assert answer.status_code == 201
    await asyncio.sleep(1.5)
    start = asyncio.get_running_loop().time()
    viewer, _ = await watch(media_node, "late")
    assert await frames_within(viewer, 1, 5.0)
    assert viewer.received["video"].first_at is not None
    assert viewer.received["video"].first_at - start < 1.0
    async with httpx.AsyncClient() as http:
        gone = await http.delete(media_node.url + answer.headers["location"],
                                 headers=auth("host", "host1"))  # fmt: skip
        assert gone.status_code == 200
        again = await http.delete(media_node.url + answer.headers["location"],
                                  headers=auth("host", "host1"))  # fmt: skip
        assert again.status_code == 404 and again.json()["code"] == "session_not_found"
    await viewer.close()
    await pc.close()


async def test_refusals(media_node: Node, h264: EncodedClip) -> None:
    """Wrong role, content type, size, SDP, session, method: each its status and code."""
    pc, offer = await make_offer([h264])
    url = f"{media_node.url}/whip/r1"
    sdp = {"Content-Type": "application/sdp"}
    nope_host = {"Authorization": f"Bearer {token('host', 'h', 'nope')}"}
    async with httpx.AsyncClient() as http:
        cases = [
            (await http.post(url, content=offer, headers={**sdp, **auth("viewer", "v")}), 403,
             "token_wrong_role"),
            (await http.post(url, content=offer, headers=sdp), 401, "token_missing"),
            (await http.post(url, content=offer, headers={**auth("host", "host1")}), 415,
             "unsupported_media_type"),
            (await http.post(url, content="v=0\r\nnonsense", headers={**sdp, **auth("host", "h")}),
             400, "bad_sdp"),
            (await http.post(url, content="hello", headers={**sdp, **auth("host", "h")}), 400,
             "bad_sdp"),
            (await http.post(url, content="v=0" + "x" * 70000,
                             headers={**sdp, **auth("host", "h")}), 413, "body_too_large"),
            (await http.post(f"{media_node.url}/whip/nope", content=offer,
                             headers={**sdp, **nope_host}),
             404, "room_not_found"),
            (await http.post(f"{media_node.url}/whep/r1", content=offer,
                             headers={**sdp, **auth("viewer", "v")}), 400, "bad_sdp"),
            (await http.delete(f"{url}/0123", headers=auth("host", "h")), 404, "session_not_found"),
        ]  # fmt: skip
        for answer, status, code in cases:
            assert answer.status_code == status, (status, answer.text)
            assert answer.json()["code"] == code
        patched = await http.patch(f"{url}/0123", content="a=ice-ufrag:x")
        assert patched.status_code == 401  # PATCH is trickle ICE: test_whip_patch.py
        options = await http.options(url)
        assert options.status_code == 204
        assert options.headers["accept-post"] == "application/sdp"
    await pc.close()


async def test_post_limits_key_on_the_user_not_the_address(media_node: Node) -> None:
    """Forty viewers from one address (a compound behind carrier-grade NAT) all pass the
    POST limit; one user past its burst of 5 gets 429 with Retry-After."""
    viewer = Viewer(("video",))
    try:
        offer = await viewer.offer()
        crowd = [await whep(media_node, offer, user=f"n{i}") for i in range(40)]
        assert {(a.status_code, a.json()["code"]) for a in crowd} == {(404, "stream_not_found")}
        # The user's bucket (1/s, burst 5) refills while the requests are made: count
        # what the clock allowed (a loaded machine may take over a second for six).
        started = time.monotonic()
        served = []
        for _ in range(30):
            limited = await whep(media_node, offer, user="v1")
            if limited.status_code == 429:
                break
            served.append(limited)
        assert 5 <= len(served) <= 5 + int(time.monotonic() - started) + 1
        assert {a.json()["code"] for a in served} == {"stream_not_found"}
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert limited.headers["retry-after"] == "1"
    finally:
        await viewer.close()


async def test_junk_offers_are_refused_before_any_state(media_node: Node) -> None:
    """A body that starts v=0 but is no offer gets 400 bad_sdp whoever is live, in a
    room that does not exist, from a KOC without a grant; a valid offer to a room
    with nobody live still gets 404 stream_not_found."""
    junk = "v=0\r\nnonsense"
    sdp = {"Content-Type": "application/sdp"}
    nope_host = {"Authorization": f"Bearer {token('host', 'h', 'nope')}"}
    nope_viewer = {"Authorization": f"Bearer {token('viewer', 'v', 'nope')}"}
    viewer = Viewer(("audio", "video"))
    offer = await viewer.offer()
    async with httpx.AsyncClient() as http:
        cases = [
            (await whep(media_node, junk), 400, "bad_sdp"),
            (await http.post(f"{media_node.url}/whep/nope", content=junk,
                             headers={**sdp, **nope_viewer}), 400, "bad_sdp"),
            (await http.post(f"{media_node.url}/whip/nope", content=junk,
                             headers={**sdp, **nope_host}), 400, "bad_sdp"),
            (await whip(media_node, junk, "koc", "koc1"), 400, "bad_sdp"),
            (await whep(media_node, offer), 404, "stream_not_found"),
            (await whep(media_node, offer, "?publisher=bad%20id"), 422, "invalid_field"),
        ]  # fmt: skip
    for answer, status, code in cases:
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    await viewer.close()


async def test_koc_costream_flow(media_node: Node, h264: EncodedClip) -> None:
    """A KOC publishes only after the host accepts; the host ends it and the room is told."""
    host = RoomClient(media_node.url, "r1", token("host", "host1"))
    koc = RoomClient(media_node.url, "r1", token("koc", "koc1"))
    await host.connect()
    await koc.connect()
    try:
        _, early = await publish(media_node, [h264], "koc", "koc1")
        assert early.status_code == 403 and early.json()["code"] == "not_accepted"
        await koc.request("costream_request")
        with pytest.raises(Exception, match="token_wrong_role"):
            await koc.request("costream_accept", user="koc1")
        await host.request("costream_accept", user="koc1")
        kpc, answer = await publish(media_node, [h264], "koc", "koc1")
        assert answer.status_code == 201, answer.text
        viewer, _ = await watch(media_node, "v1", "?publisher=koc1")
        assert await frames_within(viewer, 5, 10)
        assert await asyncio.to_thread(lean_frames, media_node) > 0  # through the lean path
        await host.request("costream_end", user="koc1")
        kinds = []
        while "costream_ended" not in kinds:
            kinds.append((await host.next_event(wait=10))["t"])
        assert kinds.index("costream_accepted") < kinds.index("stream_started")
        for _ in range(50):
            if kpc.connectionState in ("closed", "failed"):
                break
            await asyncio.sleep(0.1)
        assert kpc.connectionState in ("closed", "failed")
        _, again = await publish(media_node, [h264], "koc", "koc1")
        assert again.status_code == 403
        await viewer.close()
        await kpc.close()
    finally:
        await host.close()
        await koc.close()


async def test_cascade_across_nodes(tmp_path: Path, redis_url: str, h264: EncodedClip) -> None:
    """A viewer at node B plays a publisher at node A through one pull; A's loss is
    announced, and the room ends after the grace although A (where the grace would have
    run) is dead."""
    grace = ["--end-grace", "2", "--pull-idle", str(PULL_IDLE_S)]
    a = Node(tmp_path / "a", redis_url=redis_url, extra_args=grace).start()
    b = Node(tmp_path / "b", redis_url=redis_url, extra_args=grace).start()
    try:
        create_room(a.url)
        watcher = RoomClient(b.url, "r1", token("viewer", "watcher"))
        await watcher.connect()
        pc, answer = await publish(a, [h264])
        assert answer.status_code == 201
        while (await watcher.next_event(wait=10))["t"] != "stream_started":
            pass  # other nodes find the origin once its connection is up
        viewers = [await watch(b, f"v{i}") for i in range(2)]
        for viewer, _ in viewers:
            assert await frames_within(viewer, 10, 10), viewer.received
        sessions = await asyncio.to_thread(lambda: httpx.get(f"{a.url}/metrics").text)
        assert 'livecore_media_sessions{kind="whep"} 1.0' in sessions  # one pull for both
        # A serves the pull and B its viewers, both through the lean path.
        assert await asyncio.to_thread(lean_frames, a) > 0
        assert await asyncio.to_thread(lean_frames, b) > 0
        # The viewers leave: B's copy closes a while later (not for the rest of the live),
        # and with it the pull at A.
        for viewer, _ in viewers:
            await viewer.close()
        left = time.monotonic()
        while await asyncio.to_thread(entries, b, "media_pulled") > 0:
            assert time.monotonic() - left < PULL_IDLE_S + 10, "the copy stayed open"
            await asyncio.sleep(0.5)
        assert time.monotonic() - left >= PULL_IDLE_S - 1  # a viewer reloading finds it
        sessions = await asyncio.to_thread(lambda: httpx.get(f"{a.url}/metrics").text)
        assert 'livecore_media_sessions{kind="whep"} 0.0' in sessions
        a.stop(sig=9)
        reasons = []
        while "origin_lost" not in reasons:
            event = await watcher.next_event(wait=20)
            if event["t"] == "stream_ended":
                reasons.append(event["reason"])
        while (await watcher.next_event(wait=10))["t"] != "room_ended":
            pass  # B ran the grace the dead node could not
        for viewer, _ in viewers:
            await viewer.close()
        await watcher.close()
        await pc.close()
    finally:
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        b.stop()


async def test_a_host_whose_node_died_goes_on_at_another_node(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """The host's node is killed; the host's phone publishes again through node B within
    the grace: the same room stays live past the lapse of the dead node's lease (B renews
    it), B serves its HLS, and once the host ends the stream at B the room ends after the
    grace."""
    grace_s = 6.0
    flags = ["--end-grace", str(grace_s), "--record-segment", "1"]
    a = Node(tmp_path / "a", redis_url=redis_url, extra_args=flags).start()
    b = Node(tmp_path / "b", redis_url=redis_url, extra_args=flags).start()
    pcs: list[Any] = []
    try:
        create_room(a.url)
        watcher = RoomClient(b.url, "r1", token("viewer", "watcher"))
        await watcher.connect()
        pc, answer = await publish(a, [h264])
        pcs.append(pc)
        assert answer.status_code == 201
        while (await watcher.next_event(wait=10))["t"] != "stream_started":
            pass
        a.stop(sig=9)
        killed = time.monotonic()
        pc, again = await publish(b, [h264])
        pcs.append(pc)
        assert again.status_code == 201, again.text
        while (await watcher.next_event(wait=10))["t"] != "stream_started":
            pass
        async with httpx.AsyncClient(base_url=b.url, timeout=10) as http:
            # Past the dead node's lease (grace + 3 s margin + a sweep), the room is live.
            while time.monotonic() - killed < grace_s + 5:
                assert (await http.get("/api/rooms/r1")).json()["status"] == "live"
                await asyncio.sleep(0.5)
            playlist = await http.get("/hls/r1/index.m3u8")
            assert playlist.status_code == 200 and "#EXTINF" in playlist.text
            ended = await http.delete(again.headers["location"], headers=auth("host", "host1"))
            assert ended.status_code == 200
            gone = time.monotonic()
            while (await watcher.next_event(wait=30))["t"] != "room_ended":
                pass
            assert grace_s - 0.5 <= time.monotonic() - gone <= grace_s + 3
        await watcher.close()
    finally:
        for pc in pcs:
            await pc.close()
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        b.stop()


async def test_refused_second_publish_changes_nothing(media_node: Node, h264: EncodedClip) -> None:
    """A recvonly WHIP offer from the live host is refused and the live stream stays."""
    pc, first = await publish(media_node, [h264])
    assert first.status_code == 201, first.text
    viewer = Viewer(("audio", "video"))
    refused = await whip(media_node, await viewer.offer())
    assert refused.status_code == 400 and refused.json()["code"] == "bad_sdp"
    await viewer.close()
    watcher, _ = await watch(media_node, "v1")
    assert await frames_within(watcher, 5, 10)
    async with httpx.AsyncClient() as http:
        gone = await http.delete(media_node.url + first.headers["location"],
                                 headers=auth("host", "host1"))  # fmt: skip
    assert gone.status_code == 200
    await watcher.close()
    await pc.close()


async def test_an_ended_room_refuses_whip_and_stays_ended(
    media_node: Node, h264: EncodedClip
) -> None:
    """After 下播 (POST /end) a WHIP POST of the host is 409 ``room_ended``: no session,
    no stream_started, the room stays ended (it used to go live again)."""
    pc, first = await publish(media_node, [h264])
    assert first.status_code == 201, first.text
    await until_live(media_node)
    async with httpx.AsyncClient(base_url=media_node.url) as http:
        ended = await http.post("/api/rooms/r1/end", headers=auth("host", "host1"))
        assert ended.status_code == 200, ended.text
    await pc.close()
    async with RoomClient(media_node.url, "r1", token("viewer", "v1")) as client:
        again, refused = await publish(media_node, [h264])
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "room_ended"
        await again.close()
        seen = []
        with contextlib.suppress(TimeoutError):
            while True:  # what the room hears in the next 3 s
                seen.append((await client.next_event(wait=3))["t"])
        assert "stream_started" not in seen
    async with httpx.AsyncClient(base_url=media_node.url) as http:
        assert (await http.get("/api/rooms/r1")).json()["status"] == "ended"


async def test_offer_without_ice_is_not_live(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """An answered offer whose peer never completes ICE emits no stream_started, does
    not set the room live, and its session is rolled back (after the node's connect
    timeout: 3 s here, not the default 10)."""
    media_node = Node(tmp_path / "node", redis_url=redis_url,
                      extra_args=["--media-connect-timeout", "3"]).start()  # fmt: skip
    create_room(media_node.url)
    room = RoomClient(media_node.url, "r1", token("viewer", "watcher"))
    await room.connect()
    pc, offer = await make_offer([h264])
    await pc.close()  # the publisher vanishes before ICE: checks never succeed
    answer = await whip(media_node, offer)
    assert answer.status_code == 201, answer.text
    try:
        async with httpx.AsyncClient() as http:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                meta = (await http.get(f"{media_node.url}/api/rooms/r1")).json()
                assert meta["status"] != "live"
                metrics = (await http.get(f"{media_node.url}/metrics")).text
                if 'livecore_media_sessions{kind="whip"} 0.0' in metrics:
                    break
                assert asyncio.get_running_loop().time() < deadline, "never rolled back"
                await asyncio.sleep(0.5)
        with_events = []
        try:
            while True:
                with_events.append((await room.next_event(wait=0.5))["t"])
        except TimeoutError:
            pass
        assert "stream_started" not in with_events
    finally:
        await room.close()
        media_node.stop()


def test_pull_credential_is_scoped_to_one_room(node: Node) -> None:
    """The node-to-node credential is role node for one room: it opens WHEP there and
    can create no room, join no websocket, act in no other room."""
    import time

    from livecore import tokens
    from signalling.services.mediacopies import PULL_TOKEN_TTL_S, pull_token
    from tests.helpers import TEST_SECRET

    value = pull_token(TEST_SECRET.encode(), "node a/1", "r1", now=time.time())
    claims = tokens.verify(TEST_SECRET.encode(), value, now=time.time(), room="r1")
    assert claims.role is tokens.Role.NODE and claims.room == "r1"
    assert claims.expires_at - time.time() <= PULL_TOKEN_TTL_S
    bearer = {"Authorization": f"Bearer {value}"}
    made = httpx.post(f"{node.url}/api/rooms", json={"id": "r1", "title": "t", "store": "s"},
                      headers=bearer)  # fmt: skip
    assert made.status_code == 403 and made.json()["code"] == "token_wrong_role"
    other = httpx.post(f"{node.url}/whep/r2", content="v=0", headers=bearer
                       | {"Content-Type": "application/sdp"})  # fmt: skip
    assert other.status_code == 403 and other.json()["code"] == "token_wrong_room"


async def test_concurrent_posts_do_not_exceed_the_cap(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """With --media-max-sessions 3 and a publisher on air, six concurrent WHEP POSTs
    get exactly two sessions; the rest 503 node_full (or 429 past the POST limit)."""
    node = Node(tmp_path / "cap", redis_url=redis_url,
                extra_args=["--media-max-sessions", "3"]).start()  # fmt: skip
    viewers = [Viewer(("audio", "video")) for _ in range(6)]
    try:
        create_room(node.url)
        pc, answer = await publish(node, [h264])
        assert answer.status_code == 201
        offers = [await v.offer() for v in viewers]
        answers = await asyncio.gather(
            *(whep(node, offer, user=f"v{i}") for i, offer in enumerate(offers))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) == 2, [a.text for a in answers]
        assert set(statuses) <= {201, 429, 503}
        await pc.close()
    finally:
        for viewer in viewers:
            await viewer.close()
        node.stop()


async def test_udp_ports_and_the_aiortc_forwarder(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """--udp-ports bounds every media socket (node_full past it); --forwarder aiortc still plays."""
    from tests.media.test_forwarder import free_range

    lo, hi = free_range(2)
    flags = ["--udp-ports", f"{lo}-{hi}", "--forwarder", "aiortc"]
    node = Node(tmp_path / "n", redis_url=redis_url, extra_args=flags).start()
    try:
        create_room(node.url)
        pc, answer = await publish(node, [h264])
        assert answer.status_code == 201
        viewer, played = await watch(node, "v1")
        assert played.status_code == 201
        assert await frames_within(viewer, 5, 10)
        pattern = r"a=candidate:\S+ \d+ \w+ \d+ \S+ (\d+) typ"
        ports = sorted({int(p) for p in re.findall(pattern, answer.text + played.text)})
        assert ports == [lo, hi]
        assert await asyncio.to_thread(lean_frames, node) == 0  # aiortc's senders served it
        third = Viewer(("video",))
        full = await whep(node, await third.offer(), user="v3")
        assert full.status_code == 503 and full.json()["code"] == "node_full"
        await third.close()
        await viewer.close()
        await pc.close()
    finally:
        node.stop()


async def test_one_udp_port_for_every_session(
    tmp_path: Path, redis_url: str, h264: EncodedClip
) -> None:
    """--udp-mux: the publisher and every viewer reach the node on one UDP port."""
    from tests.media.test_forwarder import free_range

    lo, _ = free_range(1)
    node = Node(tmp_path / "n", redis_url=redis_url, extra_args=["--udp-mux", str(lo)]).start()
    try:
        create_room(node.url)
        pc, answer = await publish(node, [h264])
        assert answer.status_code == 201
        watched = [await watch(node, f"v{i}") for i in range(2)]
        for viewer, _ in watched:
            assert await frames_within(viewer, 5, 10)
        pattern = r"a=candidate:\S+ \d+ \w+ \d+ \S+ (\d+) typ"
        texts = answer.text + "".join(played.text for _, played in watched)
        assert {int(p) for p in re.findall(pattern, texts)} == {lo}
        assert await asyncio.to_thread(lean_frames, node) > 0
        for viewer, _ in watched:
            await viewer.close()
        await pc.close()
    finally:
        node.stop()
