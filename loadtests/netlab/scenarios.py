"""The field-network scenarios of ``python -m loadtests netlab``, one function each.

Each takes the built bench (:class:`Bench`: the lab, its node behind 1:1 NAT
with TURN over TCP configured, a Chromium per phone) and returns a
:class:`Scenario`: its figures (``ttff_ms``, ``fps_min``, ``recovery_s``,
more in ``detail``) and the problems that make it fail. A scenario that
cannot recover yet says so with its figures; nothing is made up for it.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, Page

from clients.python.room import RoomClient
from livecore import tokens
from loadtests.netlab import chromium
from loadtests.netlab.crowd import run_crowd
from loadtests.netlab.lab import Host, Lab
from loadtests.netlab.node import LabNode
from loadtests.netlab.publisher import ClipSpec, RunningPublisher, start_publisher
from loadtests.netlab.system import stop
from loadtests.stats import percentile

#: Targets (the Field-networks issue): first frame, frame rate.
TTFF_MAX_MS = 2000.0
FPS_MIN = 28.0
#: Comments posted every this many seconds during an outage scenario (by turns
#: from TALKERS users, each under the node's per-user comment rate).
COMMENT_EVERY_S = 0.5
TALKERS = 3
#: Seconds between a first frame and the frame-rate window (frames queued during the
#: connection are decoded at once right after it: not the stream's rate).
SETTLE_S = 1.0
#: Seconds comments go on after a link is back (then stop: the room page lists the last 60).
COMMENTS_AFTER_S = 3.0


@dataclass
class Options:
    """How long and how many: the full run's defaults, or the short form's."""

    samples: int = 5
    window_s: float = 5.0
    outage_s: float = 15.0
    recover_within_s: float = 30.0
    clip: ClipSpec = field(default_factory=ClipSpec)
    crowd_viewers: int = 1000
    crowd_within_s: float = 10.0
    crowd_processes: int = 2
    #: Seconds a crowd viewer has for its first frame after the crowd asked.
    crowd_join_s: float = 30.0
    crowd_clip: ClipSpec = field(
        default_factory=lambda: ClipSpec(width=640, height=360, bitrate=500_000)
    )


@dataclass
class Scenario:
    """One scenario's outcome."""

    name: str
    ttff_ms: float | None = None
    fps_min: float | None = None
    recovery_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def figures(self) -> dict[str, Any]:
        return {"ttff_ms": self.ttff_ms, "fps_min": self.fps_min, "recovery_s": self.recovery_s,
                "ok": self.ok, **self.detail}  # fmt: skip


@dataclass
class Bench:
    """What every scenario uses: the lab, its node, the token secret, a browser per phone."""

    lab: Lab
    node: LabNode
    secret: bytes
    options: Options
    browsers: dict[str, Browser] = field(default_factory=dict)
    publishers: dict[str, RunningPublisher] = field(default_factory=dict)

    def token(self, role: str, user: str, room: str) -> str:
        return tokens.mint(self.secret, role=tokens.Role(role), room=room, user=user, ttl_s=3600)

    def phone(self, name: str) -> Host:
        return self.lab.phones[name]

    async def room(self, room: str, host: str) -> None:
        """Create ``room`` (its host ``host``) from the host's phone."""
        answer = await self.lab.http(
            self.phone("host"), "POST", f"{self.node.url}/api/rooms",
            json={"id": room, "title": f"Room {room}", "store": "Netlab Store"},
            headers={"Authorization": f"Bearer {self.token('host', host, room)}"},
        )  # fmt: skip
        if answer.status_code != 201:
            raise RuntimeError(f"room {room}: {answer.status_code} {answer.text[:200]}")

    async def publish(self, room: str, host: str, clip: ClipSpec) -> RunningPublisher:
        """The clip published to ``room`` from the host's phone (once per room)."""
        if room not in self.publishers:
            await self.room(room, host)
            self.publishers[room] = await start_publisher(
                self.lab, self.phone("host"), self.node.url, room,
                self.token("host", host, room), clip, log=f"publisher-{room}",
            )  # fmt: skip
        return self.publishers[room]

    async def unpublish(self, room: str) -> None:
        if room in self.publishers:
            await stop(self.publishers.pop(room).proc)

    @asynccontextmanager
    async def page(self, phone: str, path: str) -> AsyncIterator[Page]:
        """A fresh context (one device) on ``phone``'s browser at the node's ``path``."""
        context = await self.browsers[phone].new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{self.node.url}{path}")
            yield page
        finally:
            await context.close()


# -- first frame and frame rate (a, b) ----------------------------------------------------


#: Ends ``window.play`` (WHEP DELETE) and drops its video element.
STOP_PLAY = "async () => { await window.play.stop(); window.video.remove(); }"


async def _first_frames(bench: Bench, phone: str, name: str) -> Scenario:
    """Viewers in ``phone`` one after the other: WHEP offer → first painted frame of
    the 720p clip; then the last one's frame rate and its candidate pair."""
    result = Scenario(name)
    await bench.publish("r1", "host1", bench.options.clip)
    times: list[float] = []
    async with bench.page(phone, "/healthz") as page:
        for i in range(bench.options.samples):
            if i:
                await page.evaluate(STOP_PLAY)
            token = bench.token("viewer", f"{phone}{i}", "r1")
            times.append(await page.evaluate(chromium.FIRST_FRAME, ["r1", token, "host1", 15000]))
        await asyncio.sleep(SETTLE_S)  # past the catch-up right after the first frame
        played = await chromium.play_fps(page, bench.options.window_s)
    result.ttff_ms = round(statistics.median(times))
    result.fps_min = round(played["fps"], 1)
    result.detail = {"ttff_samples_ms": [round(t) for t in times],
                     "frame": f"{played['width']}x{played['height']}",
                     "candidate": played["local"]}  # fmt: skip
    if result.ttff_ms > TTFF_MAX_MS:
        result.problems.append(f"first frame {result.ttff_ms} ms > {TTFF_MAX_MS:.0f} ms")
    if result.fps_min < FPS_MIN:
        result.problems.append(f"{result.fps_min} fps < {FPS_MIN:.0f}")
    return result


async def home_nat(bench: Bench) -> Scenario:
    """(a) A phone behind a home router's masquerade, the node behind 1:1 NAT: the
    direct path (no relay)."""
    result = await _first_frames(bench, "viewer", "home_nat")
    local = result.detail.get("candidate") or {}
    if local.get("type") == "relay":
        result.problems.append("the home phone went through TURN, not the direct path")
    return result


async def turn_tcp(bench: Bench) -> Scenario:
    """(b) A phone whose firewall drops every UDP datagram: through coturn over TCP."""
    result = await _first_frames(bench, "fw", "turn_tcp")
    local = result.detail.get("candidate") or {}
    if (local.get("type"), local.get("relayProtocol")) != ("relay", "tcp"):
        result.problems.append(f"the firewalled phone's pair is {local}, not a TCP relay")
    return result


# -- outages (c, d, e) --------------------------------------------------------------------


class Talkers:
    """Comments posted every ``COMMENT_EVERY_S`` from inside the node's namespace (a
    thread with its own loop: its sockets live there), each with a unique mark."""

    def __init__(self, bench: Bench, room: str) -> None:
        self.bench, self.room = bench, room
        self.acked: list[str] = []
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        lab, node = self.bench.lab, self.bench.node
        talk = lab.call(lab.node, lambda: asyncio.run(self._talk(node)))
        self._task = asyncio.ensure_future(talk)

    async def _talk(self, node: LabNode) -> None:
        clients = [RoomClient(node.local_url, self.room,
                              self.bench.token("viewer", f"talker{k}", self.room))
                   for k in range(TALKERS)]  # fmt: skip
        for client in clients:
            await client.connect()
        try:
            n = 0
            while not self._stop.is_set():
                mark = f"[nl{n}]"
                try:
                    await clients[n % TALKERS].request("comment", text=f"netlab {mark}", wait=5)
                    self.acked.append(mark)
                except Exception as exc:  # counted: a refused comment is no loss
                    self.failed.append(f"{mark} {type(exc).__name__}: {exc}")
                n += 1
                await asyncio.sleep(COMMENT_EVERY_S)
        finally:
            for client in clients:
                await client.close()

    async def finish(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


async def _comments_seen(
    page: Page, marks: list[str], within_s: float
) -> tuple[Counter[str], float | None]:
    """How often the page holds or shows each mark (the larger count: its model or its
    list), once it holds all (or at ``within_s``), and when it held all (seconds from
    the call; None: never)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        model, shown = await page.evaluate(chromium.SHOWN_COMMENTS)
        seen = Counter({m: max(sum(m in text for text in model), sum(m in text for text in shown))
                        for m in marks})  # fmt: skip
        if all(seen[m] for m in marks):
            return seen, loop.time() - started
        if loop.time() - started > within_s:
            return seen, None
        await asyncio.sleep(0.2)


async def viewer_outage(bench: Bench) -> Scenario:
    """(c) The viewer's link down, then up, on the room page: video back after the link
    (next decoded frame), and every comment posted meanwhile shown once."""
    result = Scenario("viewer_outage")
    options, lab, phone = bench.options, bench.lab, bench.phone("viewer")
    await bench.publish("r1", "host1", options.clip)
    async with bench.page("viewer", "/r/r1") as page:
        await chromium.wait_js(page, chromium.CHANNEL_LIVE, 20)
        if await chromium.next_stage_frame(page, "host1", 20) is None:
            raise RuntimeError("the room page never played host1 before the outage")
        talkers = Talkers(bench, "r1")
        talkers.start()
        try:
            await asyncio.sleep(2 * COMMENT_EVERY_S)  # comments before the outage too
            await lab.set_link(phone, up=False)
            await asyncio.sleep(options.outage_s)  # the outage itself
            await lab.set_link(phone, up=True)
            during = list(talkers.acked)  # posted before the link came back

            async def talk_on() -> None:  # comments after the link too, then no more
                await asyncio.sleep(COMMENTS_AFTER_S)
                await talkers.finish()

            result.recovery_s, (_, during_shown), _ = await asyncio.gather(
                chromium.next_stage_frame(page, "host1", options.recover_within_s),
                _comments_seen(page, during, options.recover_within_s),
                talk_on(),
            )
        finally:
            await talkers.finish()
        seen, _ = await _comments_seen(page, talkers.acked, 5.0)
    lost = [m for m in talkers.acked if not seen[m]]
    doubled = [m for m in talkers.acked if seen[m] > 1]
    result.detail = {"outage_s": options.outage_s, "comments_posted": len(talkers.acked),
                     "comments_lost": len(lost), "comments_doubled": len(doubled),
                     "comments_back_s": None if during_shown is None
                     else round(during_shown, 2),
                     "comments_refused": len(talkers.failed)}  # fmt: skip
    if result.recovery_s is None:
        result.problems.append(f"no video within {options.recover_within_s:g} s of the link")
    else:
        result.recovery_s = round(result.recovery_s, 2)
    if lost or doubled:
        result.problems.append(f"comments lost {lost[:5]} doubled {doubled[:5]}")
    if not talkers.acked:
        result.problems.append(f"no comment was accepted: {talkers.failed[:3]}")
    return result


async def _host_cut(bench: Bench, name: str, room: str, host: str, switch: bool) -> Scenario:
    """The host page publishes Chromium's fake camera from the host's phone, the room
    page plays it on the viewer's; then the host's link goes down for the outage and
    comes back (``switch``: the phone gets a new address instead). Measured: from the
    link back (the switch) to the viewer's next decoded frame of the host."""
    result = Scenario(name)
    options, lab, phone = bench.options, bench.lab, bench.phone("host")
    await bench.room(room, host)
    async with (
        bench.page("host", f"/host/{room}#token={bench.token('host', host, room)}") as studio,
        bench.page("viewer", f"/r/{room}") as viewer,
    ):
        await chromium.wait_js(studio, chromium.CHANNEL_LIVE, 20)
        await studio.click("#golive")
        await chromium.wait_js(studio, "!!window.livecore.stage.publishing", 20)
        await chromium.wait_js(viewer, chromium.CHANNEL_LIVE, 20)
        if await chromium.next_stage_frame(viewer, host, 20) is None:
            raise RuntimeError(f"the room page never played {host} before the cut")
        if switch:
            moved_from = phone.address
            await lab.switch_address(phone)
            result.detail = {"switched": f"{moved_from} -> {phone.address}"}
        else:
            await lab.set_link(phone, up=False)
            await asyncio.sleep(options.outage_s)  # the outage itself
            await lab.set_link(phone, up=True)
            result.detail = {"outage_s": options.outage_s}
        back = await chromium.next_stage_frame(viewer, host, options.recover_within_s)
        result.detail["host_publishing_after"] = await studio.evaluate(
            "!!window.livecore.stage.publishing"
        )
    if back is None:
        result.problems.append(
            f"the viewer decoded no frame of the host within {options.recover_within_s:g} s"
        )
    else:
        result.recovery_s = round(back, 2)
    return result


async def host_outage(bench: Bench) -> Scenario:
    """(d) The host's link down, then up: the stream back at a viewer after."""
    await bench.unpublish("r1")  # the clip leaves from the host's phone too
    return await _host_cut(bench, "host_outage", "r2", "host2", switch=False)


async def host_switch(bench: Bench) -> Scenario:
    """(e) The host's phone switches networks (a new address): the stream back after."""
    await bench.unpublish("r1")
    return await _host_cut(bench, "host_switch", "r3", "host3", switch=True)


# -- one address, many viewers (f) --------------------------------------------------------


async def crowd(bench: Bench) -> Scenario:
    """(f) ``crowd_viewers`` lean WHEP viewers from one phone (one public address),
    opened within ``crowd_within_s``: every answer 201, every viewer at ≥ 28 fps."""
    result = Scenario("crowd")
    options = bench.options
    await bench.unpublish("r1")
    clip = options.crowd_clip
    await bench.publish("r4", "host4", clip)
    share = await run_crowd(
        bench.lab, bench.phone("crowd"), f"{bench.node.url}/whep/r4", "r4",
        bench.secret.decode(), viewers=options.crowd_viewers,
        processes=options.crowd_processes, within_s=options.crowd_within_s,
        join_s=options.crowd_join_s, window_s=options.window_s,
    )  # fmt: skip
    await bench.unpublish("r4")
    fps = sorted(share.fps)
    result.fps_min = fps[0] if fps else None
    created = share.status.get("201", 0)
    result.detail = {"viewers": options.crowd_viewers, "status": share.status,
                     "answered_within_s": round(share.answered_within_s, 2),
                     "answer_ms": {"p50": percentile(share.answer_ms, 0.5),
                                   "p95": percentile(share.answer_ms, 0.95)},
                     "first_frame": share.first_frame, "connected": share.connected,
                     "fps_median": statistics.median(fps) if fps else None,
                     "viewers_below_28fps": sum(f < FPS_MIN for f in fps),
                     "lost_packets": share.lost_packets,
                     "stream": f"{clip.width}x{clip.height}@{clip.fps} {clip.bitrate // 1000}k",
                     "errors": dict(list(share.errors.items())[:5])}  # fmt: skip
    if created != options.crowd_viewers:
        result.problems.append(f"{created} of {options.crowd_viewers} answered 201: {share.status}")
    elif share.answered_within_s > options.crowd_within_s + 1.0:
        result.problems.append(f"the last 201 came {share.answered_within_s:.1f} s after the start")
    if result.fps_min is None or result.fps_min < FPS_MIN:
        below = result.detail["viewers_below_28fps"]
        result.problems.append(f"{below} viewers below {FPS_MIN:.0f} fps (min {result.fps_min})")
    return result


#: Scenario name → (letter of the issue, function), in the order they run.
SCENARIOS = {
    "home_nat": ("a", home_nat),
    "turn_tcp": ("b", turn_tcp),
    "viewer_outage": ("c", viewer_outage),
    "host_outage": ("d", host_outage),
    "host_switch": ("e", host_switch),
    "crowd": ("f", crowd),
}
