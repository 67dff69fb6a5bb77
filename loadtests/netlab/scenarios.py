"""The field-network scenarios of ``python -m loadtests netlab``, one function each.

Each takes the built bench (:class:`Bench`: the lab, its node behind 1:1 NAT
with TURN over TCP configured, a Chromium per phone) and returns a
:class:`Scenario`: its figures (``ttff_ms``, ``fps_min``, ``recovery_s``,
more in ``detail``) and the problems that make it fail. The
outages (c, d, e) are in ``outages.py``.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from playwright.async_api import Browser, Page

from livecore import tokens
from loadtests.netlab import chromium
from loadtests.netlab.crowd import run_crowd
from loadtests.netlab.lab import Host, Lab
from loadtests.netlab.node import LabNode
from loadtests.netlab.publisher import ClipSpec, RunningPublisher, start_publisher
from loadtests.netlab.system import stop
from loadtests.stats import percentile
from loadtests.verdict import saturated

#: Targets (the Field-networks issue): first frame, frame rate.
TTFF_MAX_MS = 2000.0
FPS_MIN = 28.0
#: Seconds between a first frame and the frame-rate window (frames queued during the
#: connection are decoded at once right after it: not the stream's rate).
SETTLE_S = 1.0


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


# -- one address, many viewers (f) --------------------------------------------------------


async def crowd(bench: Bench) -> Scenario:
    """(f) ``crowd_viewers`` lean WHEP viewers from one phone (one public address),
    opened within ``crowd_within_s``: every answer 201, every viewer at ≥ 28 fps."""
    result = Scenario("crowd")
    options = bench.options
    await bench.unpublish("r1")
    clip = options.crowd_clip
    await bench.publish("r4", "host4", clip)
    share, cpu = await run_crowd(
        bench.lab, bench.phone("crowd"), f"{bench.node.url}/whep/r4", "r4",
        bench.secret.decode(), viewers=options.crowd_viewers,
        processes=options.crowd_processes, within_s=options.crowd_within_s,
        join_s=options.crowd_join_s, window_s=options.window_s, node_pid=bench.node.proc.pid,
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
                     "errors": dict(list(share.errors.items())[:5]),
                     "cpu_pct": asdict(cpu)}  # fmt: skip
    # A crowd that used its whole core timed itself: no figure (loadtests.verdict).
    for phase, load in (("joining", cpu.load_join_pct), ("the window", cpu.load_window_pct)):
        if (problem := saturated(load, f"the crowd's answers and frames in {phase}")) is not None:
            result.problems.append(problem)
    if created != options.crowd_viewers:
        result.problems.append(f"{created} of {options.crowd_viewers} answered 201: {share.status}")
    elif share.answered_within_s > options.crowd_within_s + 1.0:
        result.problems.append(f"the last 201 came {share.answered_within_s:.1f} s after the start")
    if result.fps_min is None or result.fps_min < FPS_MIN:
        below = result.detail["viewers_below_28fps"]
        result.problems.append(f"{below} viewers below {FPS_MIN:.0f} fps (min {result.fps_min})")
    return result
