"""The second WebRTC stack in the lab: GStreamer's webrtcbin behaving as OBS does.

``tests/interop/gstpeer.py`` (no trickle, 201 + Location required, DELETE
expecting 200, ICE servers from the ``Link`` headers of an authenticated
OPTIONS) runs under Debian's python inside a phone's namespace (``ip netns
exec``), gathering on the phone's own address; the node sits behind the 1:1
NAT, coturn in the lab's TURN namespace. The same shapes as the Chromium
tests beside it (test_nat.py, test_turn_tcp.py):

- from behind a home NAT, GStreamer publishes to the node only when the node
  announces its public address: without it the answer names the private one
  and libnice's checks fail; with it the room goes live and a GStreamer
  player behind another home NAT decodes;
- behind a firewall that drops every UDP datagram, a GStreamer player gets
  no frame without TURN, and plays through coturn over TCP (the relay read
  from Link) with it;
- the host's link down 3 s, then the viewer's (under the node's 5 s consent
  expiry): the same GStreamer sessions carry video again after the link,
  though the publisher ignores keyframe requests (keyframes every 1 s, as
  the operations guide advises OBS users);
- the host's phone switches address: GStreamer has no ICE restart (and no
  consent checks: it does not notice), the node ends the vanished stream,
  and, as OBS reconnects its output, a new publisher posts from the new
  address; the room stays live, and a viewer's room page (Chromium) follows
  ``stream_ended`` ``lost`` → ``stream_started`` without a reload.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from loadtests.coturn import start_coturn
from loadtests.netlab import Lab, PhoneSpec, Router
from loadtests.netlab.node import LabNode, start_node
from loadtests.netlab.plan import NODE_PRIVATE, NODE_PUBLIC, TURN_PUBLIC
from loadtests.netlab.publisher import ClipSpec, start_publisher
from loadtests.netlab.system import stop
from tests.browser import launch, phone, wait_js
from tests.helpers import TEST_SECRET, token
from tests.interop.gstreamer import Event, GstPeer, require_gstreamer
from tests.netlab.pagejs import FRAME_LOG, first_frame_after, flags
from tests.netlab.test_nat import RESULTS, create_room
from tests.netlab.test_recovery import HOST_BACK_S, LIVE
from tests.netlab.test_turn_tcp import ANNOUNCE, require_coturn
from tests.waiting import eventually

pytestmark = [pytest.mark.alone, pytest.mark.timeout(300)]

#: Seconds libnice is given to declare ICE failed when no pair can work.
FAIL_WITHIN_S = 60.0
#: Frames a player decodes before it counts as playing (2 s at 30 fps).
FRAMES = 60
#: What the aiortc publisher sends the UDP-less player (the Chromium test sends 720p).
CLIP = ClipSpec(width=640, height=360, fps=30, bitrate=800_000)
#: A link down this long stays under the node's consent expiry (5 s): sessions are kept.
SHORT_OUTAGE_S = 3.0
#: Video back at the player within this after the link (stats come every 0.25 s).
BACK_WITHIN_S = 3.0
#: The ICE servers come from Link (OPTIONS with the token) and are used, as OBS does.
FROM_LINK = ("--options", "--apply-ice-servers")


async def gst(lab: Lab, role: str, command: str, node: LabNode, tmp_path: Path,
              user: tuple[str, str], *args: str) -> GstPeer:  # fmt: skip
    """gstpeer ``command`` (publish to /whip/r1, play /whep/r1) in phone ``role``'s
    namespace, host candidates on that phone's address."""
    phone = lab.phones[role]
    path = "whip" if command == "publish" else "whep"
    return await GstPeer.start(
        command, f"{node.url}/{path}/r1", token(*user), "--ice-address", phone.address, *args,
        log_dir=tmp_path / "gst", netns=phone.ns,
    )  # fmt: skip


def ice_failed(event: Event) -> bool:
    return bool(event["state"] == "failed")


def connected(event: Event) -> bool:
    return bool(event["state"] == "connected")


def video(event: Event) -> bool:
    return bool(event["kind"] == "video")


async def live(lab: Lab, node: LabNode) -> bool:
    answer = await lab.http(lab.phones["host"], "GET", f"{node.url}/api/rooms/r1")
    return bool(answer.json()["status"] == "live")


async def test_gstreamer_publishes_from_home_nat_only_with_the_announced_address(
    lab_machine: None, tmp_path: Path
) -> None:
    """Without --announce-address the answer to GStreamer's offer names 198.51.100.10 and
    ICE fails (STUN and TURN from Link do not help: the relay cannot reach it either);
    with 198.51.100.10=203.0.113.10 it goes live from its home NAT, and a GStreamer
    player behind another home NAT decodes."""
    require_gstreamer()
    require_coturn()
    phones = [PhoneSpec("host"), PhoneSpec("viewer")]
    host, viewer = ("host", "host1"), ("viewer", "gst-viewer")
    async with Lab.open(tmp_path / "lab", phones, turn=True) as lab:
        assert lab.turn is not None
        relay = await asyncio.to_thread(
            start_coturn, TURN_PUBLIC, workdir=tmp_path / "coturn", netns=lab.turn.ns,
            allowed_peers=(NODE_PUBLIC,),
        )  # fmt: skip
        peers: list[GstPeer] = []
        try:
            link = ["--stun-url", f"stun:{TURN_PUBLIC}:3478", "--turn-url", relay.urls["udp"],
                    "--turn-secret-file", str(relay.secret_file)]  # fmt: skip
            node = await start_node(lab, tmp_path / "plain", secret=TEST_SECRET, args=link,
                                    log="plain")  # fmt: skip
            await create_room(lab, node)
            peers.append(await gst(lab, "host", "publish", node, tmp_path, host, *FROM_LINK))
            servers = (await peers[0].wait_for("options"))["ice_servers"]
            plain = await peers[0].wait_for("answered")
            failed = await peers[0].wait_for("ice", FAIL_WITHIN_S, ice_failed)
            assert peers[0].find("connection", connected) is None
            assert not await live(lab, node)
            await peers[0].close()
            await node.stop()

            node = await start_node(lab, tmp_path / "announced", secret=TEST_SECRET,
                                    args=[*ANNOUNCE, *link], log="announced")  # fmt: skip
            await create_room(lab, node)
            peers.append(await gst(lab, "host", "publish", node, tmp_path, host, *FROM_LINK))
            announced = await peers[1].wait_for("answered")
            await peers[1].wait_for("connection", 20, connected)
            await eventually(lambda: live(lab, node), within=10, what="the room goes live")
            peers.append(await gst(lab, "viewer", "play", node, tmp_path, viewer, *FROM_LINK))
            created = await peers[2].wait_for("created")
            first = await peers[2].wait_for("first_frame", 20, video)
            await peers[2].stats_reach("video", FRAMES, within=20)
            assert await peers[2].stop() == 0, "the player's DELETE answered 200"
            assert await peers[1].stop() == 0, "the publisher's DELETE answered 200"
        finally:
            for peer in peers:
                await peer.close()
            await asyncio.to_thread(relay.stop)
    figures = {
        "ice_failed_without_announce_after_s": round(failed["t"] - plain["t"], 1),
        "first_frame_ms": round(1000 * (first["t"] - created["t"] + created["post_s"])),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.with_name("netlab-gst-nat.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"GStreamer behind home NAT: {figures}")
    assert {s["urls"].split(":")[0] for s in servers} == {"stun", "turn"}, servers
    assert {c.split()[1] for c in plain["candidates"]} == {NODE_PRIVATE}, plain
    assert {c.split()[1] for c in announced["candidates"]} == {NODE_PUBLIC}, announced


async def test_gstreamer_plays_through_turn_over_tcp_only_with_udp_blocked(
    lab_machine: None, tmp_path: Path
) -> None:
    """UDP dropped at the phone's firewall: a GStreamer player gets no frame without TURN
    (its ICE fails); with coturn over TCP read from Link it plays through the relay."""
    require_gstreamer()
    require_coturn()
    phones = [PhoneSpec("host"), PhoneSpec("fw", Router.NO_UDP)]
    player = ("viewer", "gst-fw")
    async with Lab.open(tmp_path / "lab", phones, turn=True) as lab:
        assert lab.turn is not None
        node = await start_node(lab, tmp_path / "plain", secret=TEST_SECRET, args=ANNOUNCE,
                                log="plain")  # fmt: skip
        await create_room(lab, node)
        await start_publisher(lab, lab.phones["host"], node.url, "r1", token("host", "host1"),
                              CLIP, log="publisher-plain")  # fmt: skip
        peers = [await gst(lab, "fw", "play", node, tmp_path, player, *FROM_LINK)]
        try:
            assert (await peers[0].wait_for("options"))["ice_servers"] == []
            await peers[0].wait_for("ice", FAIL_WITHIN_S, ice_failed)
            assert peers[0].find("first_frame") is None
            await peers[0].close()
            for proc in lab.processes:  # the publisher, then the node
                await stop(proc)

            relay = await asyncio.to_thread(
                start_coturn, TURN_PUBLIC, workdir=tmp_path / "coturn", netns=lab.turn.ns,
                allowed_peers=(NODE_PUBLIC,),
            )  # fmt: skip
            try:
                args = [*ANNOUNCE, "--turn-url", relay.urls["tcp"],
                        "--turn-secret-file", str(relay.secret_file)]  # fmt: skip
                node = await start_node(lab, tmp_path / "turn", secret=TEST_SECRET, args=args,
                                        log="turn")  # fmt: skip
                await create_room(lab, node)
                host = token("host", "host1")
                await start_publisher(lab, lab.phones["host"], node.url, "r1", host, CLIP,
                                      log="publisher-turn")  # fmt: skip
                peers.append(await gst(lab, "fw", "play", node, tmp_path, player, *FROM_LINK))
                servers = (await peers[1].wait_for("options"))["ice_servers"]
                offer = await peers[1].wait_for("offer")
                created = await peers[1].wait_for("created")
                first = await peers[1].wait_for("first_frame", 20, video)
                await peers[1].stats_reach("video", FRAMES, within=20)
                assert await peers[1].stop() == 0, "the player's DELETE answered 200"
            finally:
                await asyncio.to_thread(relay.stop)
        finally:
            for peer in peers:
                await peer.close()
    first_ms = round(1000 * (first["t"] - created["t"] + created["post_s"]))
    print(f"GStreamer behind a UDP-less firewall, through TURN/TCP: first frame {first_ms} ms")
    assert [s["urls"] for s in servers] == [relay.urls["tcp"]], servers
    assert any(c.endswith(" relay") for c in offer["candidates"]), offer


async def test_gstreamer_sessions_carry_video_again_after_short_outages(
    lab_machine: None, tmp_path: Path
) -> None:
    """GStreamer publishing (keyframe requests ignored, keyframes every 1 s) and playing,
    each behind a home NAT: the host's link down 3 s, then the viewer's; each time the
    player decodes again within 3 s of the link, on the same sessions (one POST each,
    both DELETEs answered 200)."""
    require_gstreamer()
    phones = [PhoneSpec("host"), PhoneSpec("viewer")]
    async with Lab.open(tmp_path / "lab", phones) as lab:
        node = await start_node(lab, tmp_path / "node", secret=TEST_SECRET, args=ANNOUNCE)
        await create_room(lab, node)
        peers = [await gst(lab, "host", "publish", node, tmp_path, ("host", "host1"),
                           "--keyint-s", "1")]  # fmt: skip
        try:
            await peers[0].wait_for("connection", 20, connected)
            await eventually(lambda: live(lab, node), within=10, what="the room goes live")
            peers.append(await gst(lab, "viewer", "play", node, tmp_path, ("viewer", "gst-v")))
            player = peers[1]
            await player.stats_reach("video", FRAMES, within=20)
            back: dict[str, float] = {}
            for role in ("host", "viewer"):
                await lab.set_link(lab.phones[role], up=False)
                await asyncio.sleep(SHORT_OUTAGE_S)  # the outage itself
                await lab.set_link(lab.phones[role], up=True)
                up, frames = time.monotonic(), player.last("stats")["video"]
                again = await player.wait_for(
                    "stats", 15, lambda e, up=up, frames=frames: e["m"] > up and e["video"] > frames
                )  # fmt: skip
                back[role] = round(again["m"] - up, 2)
            assert [e for e in player.events if e["event"] == "created"] == [player.last("created")]
            assert await player.stop() == 0, "the player's session outlived both outages"
            assert await peers[0].stop() == 0, "the publisher's session outlived both outages"
            dropped = peers[0].last("stats")["keyframe_requests_dropped"]
        finally:
            for peer in peers:
                await peer.close()
    print(f"GStreamer after 3 s outages: video back {back} s; keyframe requests dropped {dropped}")
    assert all(0 <= s <= BACK_WITHIN_S for s in back.values()), back


def given_up(event: Event) -> bool:
    """A connection state after which OBS's output reconnects."""
    return bool(event["state"] in ("disconnected", "failed", "closed"))


async def test_gstreamer_host_switch_reconnects_and_viewers_follow(
    lab_machine: None, tmp_path: Path
) -> None:
    """The GStreamer publisher's phone gets a new address: the node ends its stream within
    its consent expiry, a new publisher posts from the new address (as OBS reconnects);
    the room stays live and the viewer's room page plays the new stream within 5 s of
    the new POST, without a reload."""
    require_gstreamer()
    phones = [PhoneSpec("host"), PhoneSpec("viewer")]
    host = ("host", "host1")
    async with Lab.open(tmp_path / "lab", phones) as lab:
        node = await start_node(lab, tmp_path / "node", secret=TEST_SECRET, args=ANNOUNCE)
        await create_room(lab, node)
        peers = [await gst(lab, "host", "publish", node, tmp_path, host, "--keyint-s", "1")]
        try:
            await peers[0].wait_for("connection", 20, connected)
            await eventually(lambda: live(lab, node), within=10, what="the room goes live")
            async with launch(str(lab.chromium(lab.phones["viewer"])), flags(node.url)) as b:
                viewer, _ = await phone(b)
                await viewer.goto(f"{node.url}/r/r1#token={token('viewer', 'v1')}")
                await wait_js(viewer, LIVE, 20)
                await viewer.evaluate(FRAME_LOG, "host1")
                await viewer.evaluate("window.notReloaded = true")
                await wait_js(viewer, "window.frameLog.some(([, f]) => typeof f === 'number')", 20)
                switched = time.monotonic()
                await lab.switch_address(lab.phones["host"])
                # webrtcbin (libnice, no consent freshness) does not notice that its path
                # vanished; the node does (consent, ~5-7 s) and ends the stream (the page
                # drops the player on stream_ended): that is when this "OBS" reconnects.
                await wait_js(viewer, "!window.livecore.stage.players.has('host1')", 15)
                noticed = time.monotonic()
                still = peers[0].find("connection", given_up) is None
                await peers[0].close()
                at = await viewer.evaluate("performance.now()")
                reposted = time.monotonic()
                peers.append(await gst(lab, "host", "publish", node, tmp_path, host,
                                       "--keyint-s", "1"))  # fmt: skip
                await peers[1].wait_for("connection", 20, connected)
                new_frames = (
                    f"window.frameLog.filter(([t, f]) => t > {at} && typeof f === 'number')"
                )
                await wait_js(viewer, f"{new_frames}.length > 30", 20)
                back_ms = first_frame_after(await viewer.evaluate("window.frameLog"), at)
                assert await viewer.evaluate("window.notReloaded === true")
            assert await live(lab, node), "the room stayed live through the switch"
            assert await peers[1].stop() == 0
        finally:
            for peer in peers:
                await peer.close()
    figures = {"node_noticed_after_s": round(noticed - switched, 1),
               "gstreamer_still_connected": still, "back_after_post_ms": round(back_ms),
               "repost_s": round(reposted - switched, 1)}  # fmt: skip
    print(f"GStreamer host switch: {figures}")
    assert 0 <= back_ms <= HOST_BACK_S * 1000, figures
