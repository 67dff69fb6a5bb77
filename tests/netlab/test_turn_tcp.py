"""A phone behind a firewall that drops every UDP datagram plays only through TURN over TCP.

The lab: the node behind 1:1 NAT (announced address), the host's phone
behind a home router publishing a 720p30 H.264 clip at 1.5 Mbit/s over WHIP
(``loadtests.netlab.publisher``), the viewer's phone behind ``Router.NO_UDP``
(a corporate network: TCP out only) with Chromium playing through the pages'
media.js. Without TURN its ICE never connects; with coturn in the lab's TURN
namespace and the node handing out ``turn:203.0.113.5:3478?transport=tcp``
(TURN REST credentials from the shared secret file), the first frame comes
within 2 s and plays at ≥ 28 fps over a TCP relay.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError

from loadtests.coturn import coturn_available, start_coturn
from loadtests.netlab import Lab, PhoneSpec, Router
from loadtests.netlab.chromium import FIRST_FRAME, browser_in, play_fps
from loadtests.netlab.node import LabNode, start_node
from loadtests.netlab.plan import NODE_PRIVATE, NODE_PUBLIC, TURN_PUBLIC
from loadtests.netlab.publisher import ClipSpec, start_publisher
from loadtests.netlab.system import stop
from tests.browser import chromium_path
from tests.helpers import TEST_SECRET, missing, token
from tests.netlab.test_nat import RESULTS, create_room

STOP_PLAY = "async () => { await window.play.stop(); window.video.remove(); }"
ICE_STATE = "window.play ? window.play.pc.iceConnectionState : 'none'"

pytestmark = [pytest.mark.alone, pytest.mark.timeout(240)]

TTFF_MAX_MS = 2000.0
FPS_MIN = 28.0
SAMPLES = 3
WINDOW_S = 5.0
CLIP = ClipSpec(width=1280, height=720, fps=30, bitrate=1_500_000)
ANNOUNCE = ["--announce-address", f"{NODE_PRIVATE}={NODE_PUBLIC}"]


def require_coturn() -> None:
    if not coturn_available():
        why = "coturn (turnserver) is needed: make system"
        missing(why)


async def publish(lab: Lab, node: LabNode, log: str) -> None:
    await create_room(lab, node)
    await start_publisher(lab, lab.phones["host"], node.url, "r1", token("host", "host1"), CLIP,
                          log=log)  # fmt: skip


async def test_udp_blocked_phone_plays_only_through_turn_over_tcp(
    lab_machine: None, tmp_path: Path
) -> None:
    """UDP dropped at the phone's firewall: no frame without TURN (ICE never connects);
    with coturn over TCP, first frames within 2 s and ≥ 28 fps of the 720p clip."""
    chromium_path()
    require_coturn()
    phones = [PhoneSpec("host"), PhoneSpec("fw", Router.NO_UDP)]
    async with Lab.open(tmp_path / "lab", phones, turn=True) as lab:
        assert lab.turn is not None
        fw = lab.phones["fw"]
        node = await start_node(lab, tmp_path / "plain", secret=TEST_SECRET, args=ANNOUNCE,
                                log="plain")  # fmt: skip
        await publish(lab, node, "publisher-plain")
        async with browser_in(lab, fw, node.url) as browser:
            page = await browser.new_page()
            await page.goto(f"{node.url}/healthz")
            with pytest.raises(PlaywrightError, match="no frame within 10000 ms"):
                await page.evaluate(FIRST_FRAME, ["r1", token("viewer", "v0"), "host1", 10000])
            ice_without = await page.evaluate(ICE_STATE)
            servers = await page.evaluate(
                "async (t) => (await (await fetch('/api/rooms/r1/ice-servers', "
                "{headers: {Authorization: 'Bearer ' + t}})).json()).iceServers",
                token("viewer", "v0"),
            )
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
            await publish(lab, node, "publisher-turn")
            async with browser_in(lab, fw, node.url) as browser:
                page = await browser.new_page()
                await page.goto(f"{node.url}/healthz")
                times = []
                for i in range(SAMPLES):
                    if i:
                        await page.evaluate(STOP_PLAY)
                    times.append(await page.evaluate(
                        FIRST_FRAME, ["r1", token("viewer", f"v{i + 1}"), "host1", 15000]
                    ))  # fmt: skip
                played = await play_fps(page, WINDOW_S)
        finally:
            await asyncio.to_thread(relay.stop)
    figures = {
        "ice_without_turn": ice_without,
        "ttff_ms": [round(t) for t in times],
        "ttff_median_ms": round(statistics.median(times)),
        "fps": round(played["fps"], 1),
        "frame": f"{played['width']}x{played['height']}",
        "candidate": played["local"],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.with_name("netlab-turn-tcp.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"UDP-blocked phone through TURN/TCP: {figures}")
    assert servers == [], "the node without --turn-url hands out no server"
    assert ice_without in ("new", "checking", "failed", "disconnected"), figures
    local = played["local"] or {}
    assert (local.get("type"), local.get("relayProtocol")) == ("relay", "tcp"), figures
    assert figures["frame"] == "1280x720", figures
    assert figures["ttff_median_ms"] <= TTFF_MAX_MS, figures
    assert played["fps"] >= FPS_MIN, figures
