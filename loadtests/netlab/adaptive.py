"""``python -m loadtests adaptive``: simulcast in the namespace lab, each viewer on its link.

One host page (Chromium's fake camera, the pages' ``media.js``) publishes three
H.264 layers from an uncapped phone; three viewer pages play it from phones
whose links are capped by ``tc tbf`` at 0.4, 1.2 and 6 Mbit/s (both ways).
Over ``--window`` seconds each viewer's ``getStats`` is sampled every 0.25 s:

- ``fps_min``: the lowest frames decoded in any whole second of the window
  (``fps_min_at_s``: that second's start, seconds into the window, to find it
  in a ``--trace``);
- ``freeze_pct``: Chromium's ``totalFreezesDuration`` grown over the window,
  as a share of it;
- ``layers``: the frame heights decoded, with the share of samples on each.

Then the 6 Mbit/s viewer's cap goes to 0.4 Mbit/s and back: ``switch_down_s``
(until its frames have the height of the host's bottom layer), ``switch_up_s``
(until they have its top layer's again), ``longest_freeze_s`` across both.
Heights are the host's as it encodes them now (``host_heights``), with what
each layer sent over the window (``host_layers_kbit``): on a busy machine
Chromium encodes below the camera's 720p. The host's camera is a generated
clip with detail, motion and sensor grain (``loadtests.netlab.camera``), so
each layer fills its budget as a real phone's would. The same host then
publishes one encoding (``simulcast: false``, as before issue 23) and the
same viewers are measured again, side by side.

During the simulcast run a fifth phone (6 Mbit/s) opens the viewer page and is
sent to LL-HLS as a person's page is, by the node's WebRTC capacity
(``loadtests.netlab.hlsviewer``): ``hls_behind_live_s`` {p50, max} over the
window (now against ``hls.playingDate``), ``webrtc_behind_node_s`` (the 6 Mbit/s
WebRTC viewer's playout delay, from its stats) and ``hls_behind_webrtc_s``;
then, while the 6 Mbit/s WebRTC viewer's cap changes, the HLS phone's cap goes
to 0.4 Mbit/s and back: ``hls_levels`` (the renditions hls.js played before,
during and after, with shares), ``hls_switch_down_s``, ``hls_switch_up_s``, and
``hls_errors`` (hls.js's error events on the page, by detail, from its first frame).
A run whose HLS viewer never played is invalid.

``--trace FILE`` writes what each viewer's layer selector saw and chose, twice
a second, and why (the node's ``media.layerforward`` debug lines, ``--log-debug``),
merged by time with the lab's own steps (publish, windows, cap changes) and the
phones' addresses as the node sees them.

Needs root, ``ip netns``, ``tc`` and Chromium (see docs/netlab.md). The last
line of stdout is one JSON object (``loadtests.verdict``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from livecore import tokens
from loadtests.netlab import Lab, PhoneSpec, plan, unavailable
from loadtests.netlab.boxes import shape
from loadtests.netlab.camera import write_clip
from loadtests.netlab.chromium import CHROMIUM, browser_in, wait_js
from loadtests.netlab.hlsviewer import (
    HLS_ERRORS_WATCH,
    HLS_LEVELS,
    HLS_SAMPLE,
    HLS_STATE,
    WEBRTC_DELAY,
    HlsSamples,
    WebrtcDelay,
    hls_figures,
)
from loadtests.netlab.node import LabNode, start_node
from loadtests.stats import HelpFormatter, log
from loadtests.verdict import finish

CAPS_KBIT = {"v04": 400, "v12": 1200, "v60": 6000}
#: Chromium's fake camera runs at 20 fps unless told; the targets are at 25+.
FAKE_CAMERA_30FPS = ("--use-fake-device-for-media-stream=fps=30",)
ROOM, HOST = "r1", "host1"
#: The pages' vendor bundle of hls.js, which the HLS viewer page loads.
HLS_JS = Path(__file__).resolve().parents[2] / "signalling" / "static" / "vendor" / "hls.js"
#: The phone whose viewer page plays LL-HLS (the node's WebRTC places all taken).
HLS_PHONE, HLS_KBIT, HLS_CAPPED_KBIT = "hls", 6000, 400

PUBLISH = """async ([room, token, simulcast]) => {
  const m = await import('/static/media.js');
  const stream = await m.camera();
  window.pub = await m.publish(room, token, stream, { simulcast });
  return true;
}"""

WATCH = """async ([room, token, publisher]) => {
  const m = await import('/static/media.js');
  if (window.play) { await window.play.stop(); window.video.remove(); }
  const play = await m.watch(room, token, publisher);
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true; video.autoplay = true;
  document.body.appendChild(video);
  video.srcObject = play.stream;
  video.play().catch(() => {});
  window.play = play; window.video = video;
  return true;
}"""

#: The host's encoded heights now (one per layer sent, largest first): a loaded machine
#: makes Chromium encode below 720p, so the viewers' heights are judged against these.
HOST_HEIGHTS = """async () => {
  const out = [];
  if (!window.pub) return out;
  (await window.pub.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameHeight) out.push(r.frameHeight);
  });
  return out.sort((a, b) => b - a);
}"""

#: What each of the host's layers has sent: {rid: [height, bytes, frames encoded, why
#: Chromium limits its quality]} (rid "" for one layer).
HOST_SENT = """async () => {
  const out = {};
  if (!window.pub) return out;
  (await window.pub.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp' && r.kind === 'video') {
      out[r.rid || ''] = [r.frameHeight || 0, r.bytesSent || 0, r.framesEncoded || 0,
                          r.qualityLimitationReason || ''];
    }
  });
  return out;
}"""

SAMPLE = """async () => {
  const out = { frames: 0, height: 0, freezes: 0, at: performance.now() };
  if (!window.play) return out;
  (await window.play.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      out.frames += r.framesDecoded || 0; out.height = r.frameHeight || 0;
      out.freezes += r.totalFreezesDuration || 0;
    }
  });
  return out;
}"""


@dataclass
class Samples:
    """One viewer's getStats samples: (seconds, frames decoded, frame height, freeze s)."""

    rows: list[tuple[float, int, int, float]] = field(default_factory=list)

    def add(self, s: dict[str, Any]) -> None:
        self.rows.append((s["at"] / 1000, int(s["frames"]), int(s["height"]), float(s["freezes"])))

    def figures(self) -> dict[str, Any]:
        rows = self.rows
        if len(rows) < 2:
            return {"fps_min": None, "freeze_pct": None, "layers": {}}
        start, end = rows[0][0], rows[-1][0]
        per_second: list[tuple[float, float]] = []  # (fps, start of the second)
        t = start
        while t + 1.0 <= end:
            inside = [r for r in rows if t <= r[0] <= t + 1.0]
            if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
                fps = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
                per_second.append((fps, t - start))
            t += 1.0
        worst = min(per_second) if per_second else None
        heights: dict[str, int] = {}
        for row in rows:
            heights[f"{row[2]}p"] = heights.get(f"{row[2]}p", 0) + 1
        span = end - start
        return {
            "fps_min": round(worst[0], 1) if worst else None,
            "fps_min_at_s": round(worst[1], 1) if worst else None,
            "fps_mean": round((rows[-1][1] - rows[0][1]) / span, 1),
            "freeze_pct": round(100 * (rows[-1][3] - rows[0][3]) / span, 2),
            "layers": {h: round(n / len(rows), 2) for h, n in sorted(heights.items())},
        }


class Run:
    """The lab, its node, a browser per phone."""

    def __init__(self, lab: Lab, node: LabNode, secret: bytes, browsers: dict[str, Browser]):
        self.lab, self.node, self.secret, self.browsers = lab, node, secret, browsers
        self.pages: dict[str, Page] = {}
        self.short = False
        self.hls_problem: str | None = None
        """Why the HLS viewer did not play (None: it played)."""
        self.hls: dict[str, Any] = {}
        self.events: list[str] = []
        """The lab's steps, as trace lines (the node's log time format)."""

    def event(self, text: str) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        self.events.append(f"{stamp},{int(now % 1 * 1000):03d} LAB {text}")

    def token(self, role: str, user: str) -> str:
        return tokens.mint(self.secret, role=tokens.Role(role), room=ROOM, user=user, ttl_s=3600)

    async def page(self, phone: str) -> Page:
        if phone not in self.pages:
            context = await self.browsers[phone].new_context()
            self.pages[phone] = await context.new_page()
            await self.pages[phone].goto(f"{self.node.url}/healthz")
        return self.pages[phone]

    async def publish(self, simulcast: bool) -> None:
        host = await self.page("host")
        await host.evaluate("async () => { if (window.pub) await window.pub.stop(); }")
        await host.evaluate(PUBLISH, [ROOM, self.token("host", HOST), simulcast])
        for phone in CAPS_KBIT:
            viewer = await self.page(phone)
            await viewer.evaluate(WATCH, [ROOM, self.token("viewer", phone), HOST])

    async def sample(
        self, seconds: float, phones: list[str], hls: HlsSamples | None = None,
        webrtc: WebrtcDelay | None = None,
    ) -> dict[str, Samples]:  # fmt: skip
        """Every 0.25 s for ``seconds``: each of ``phones``' WHEP stats, and the HLS
        page's player into ``hls``, the 6 Mbit/s viewer's delay sums into ``webrtc``."""
        out = {phone: Samples() for phone in phones}
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            for phone in phones:
                out[phone].add(await (await self.page(phone)).evaluate(SAMPLE))
            if hls is not None:
                hls.add(await (await self.page(HLS_PHONE)).evaluate(HLS_SAMPLE))
            if webrtc is not None:
                webrtc.add(await (await self.page("v60")).evaluate(WEBRTC_DELAY))
            await asyncio.sleep(0.25)
        return out

    async def open_hls(self) -> bool:
        """The HLS phone opens the room's viewer page (a guest): the node is full, so
        the page plays LL-HLS; True once hls.js plays (else ``hls_problem`` says why)."""
        page = await self.page(HLS_PHONE)
        self.event("HLS viewer opens the viewer page")
        await page.goto(f"{self.node.url}/r/{ROOM}")
        try:
            await wait_js(page, "window.livecore.stage.hls.hls.media.currentTime > 1", 60)
            await wait_js(page, "window.livecore.stage.hls.hls.playingDate", 20)
        except TimeoutError as exc:
            state = await page.evaluate(HLS_STATE)
            self.hls_problem = f"the HLS viewer never played: {exc}; the page: {state}"
            return False
        self.event("HLS viewer plays")
        await page.evaluate(HLS_ERRORS_WATCH)
        return True

    async def close_hls(self) -> None:
        """The HLS page leaves (before the single-layer run takes the node's places again)."""
        await (await self.page(HLS_PHONE)).goto("about:blank")

    async def hls_abr(self) -> tuple[HlsSamples, HlsSamples]:
        """The HLS phone's cap to 0.4 Mbit/s and back: the page's samples capped, after."""
        hold = 12.0 if self.short else 20.0
        capped, after = HlsSamples(), HlsSamples()
        page = await self.page(HLS_PHONE)
        await self.cap(HLS_PHONE, HLS_CAPPED_KBIT)
        await self._sample_hls(page, hold, capped)
        await self.cap(HLS_PHONE, HLS_KBIT)
        await self._sample_hls(page, hold + 10.0, after)
        return capped, after

    @staticmethod
    async def _sample_hls(page: Page, seconds: float, into: HlsSamples) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            into.add(await page.evaluate(HLS_SAMPLE))
            await asyncio.sleep(0.25)

    async def host_sent(self) -> dict[str, Any]:
        sent: dict[str, Any] = await (await self.page("host")).evaluate(HOST_SENT)
        return {"at": time.monotonic(), "sent": sent}

    async def cap(self, phone: str, rate_kbit: int) -> None:
        self.event(f"cap {phone} ({self.lab.phones[phone].public}) {rate_kbit} kbit/s")
        await shape(self.lab.routers[phone].ns, "lan", rate_kbit)
        host = self.lab.phones[phone]
        await shape(host.ns, host.device, rate_kbit)

    async def host_heights(self) -> list[int]:
        heights: list[int] = await (await self.page("host")).evaluate(HOST_HEIGHTS)
        return heights

    async def until_layer(self, phone: str, top: bool, within: float) -> tuple[float, float]:
        """Seconds until ``phone`` decodes the host's top (``top``) or bottom layer's
        height (or ``within``), and the longest stretch without a new frame meanwhile."""
        page = await self.page(phone)
        loop = asyncio.get_running_loop()
        start = last_new = loop.time()
        longest, frames = 0.0, -1
        while loop.time() - start < within:
            s = await page.evaluate(SAMPLE)
            heights = await self.host_heights()
            now = loop.time()
            if s["frames"] != frames:
                frames, last_new = s["frames"], now
            longest = max(longest, now - last_new)
            if s["height"] and heights and s["height"] == (heights[0] if top else heights[-1]):
                return now - start, longest
            await asyncio.sleep(0.1)
        return within, longest


async def measure(run: Run, window_s: float, simulcast: bool) -> dict[str, Any]:
    run.event(f"publish simulcast={simulcast}")
    await run.publish(simulcast)
    ramp = await run.until_layer("v60", True, 90.0)  # the encoder's own bandwidth ramp
    heights = await run.host_heights()
    log(f"adaptive: simulcast={simulcast}: the top layer ({heights}) at the 6 Mbit/s viewer "
        f"after {ramp[0]:.1f} s")  # fmt: skip
    hls = await run.open_hls() if simulcast else False
    await asyncio.sleep(3.0)
    run.event(f"window of {window_s:g} s begins")
    window, webrtc = (HlsSamples(), WebrtcDelay()) if hls else (None, None)
    sent_before = await run.host_sent()
    samples = await run.sample(window_s, list(CAPS_KBIT), window, webrtc)
    sent_after = await run.host_sent()
    run.event("window ends")
    out: dict[str, Any] = {"ramp_s": round(ramp[0], 1), "host_heights": heights,
                           "host_layers_kbit": layer_rates(sent_before, sent_after)}  # fmt: skip
    for phone, rate in CAPS_KBIT.items():
        out[f"{rate / 1000:g}Mbit"] = samples[phone].figures()
    if simulcast:
        abr = asyncio.create_task(run.hls_abr()) if hls else None
        await run.cap("v60", 400)
        down = await run.until_layer("v60", False, 20.0)
        run.event(f"v60 down after {down[0]:.1f} s")
        await run.cap("v60", 6000)
        up = await run.until_layer("v60", True, 30.0)
        run.event(f"v60 up after {up[0]:.1f} s")
        out["cap_change"] = {"switch_down_s": round(down[0], 1), "switch_up_s": round(up[0], 1),
                             "longest_freeze_s": round(max(down[1], up[1]), 2)}  # fmt: skip
        if abr is not None and window is not None and webrtc is not None:
            capped, after = await abr
            renditions = await (await run.page(HLS_PHONE)).evaluate(HLS_LEVELS)
            run.hls = hls_figures(window, capped, after, webrtc, renditions)
            hls_page = await run.page(HLS_PHONE)
            run.hls["hls_errors"] = await hls_page.evaluate("() => window.netlabHlsErrors")
            if not window.played:
                run.hls_problem = "the HLS viewer did not play over the window"
        await run.close_hls()
    return out


def layer_rates(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """kbit/s and frames/s each host layer sent between two ``host_sent`` readings, by
    rid, with its height and Chromium's ``qualityLimitationReason`` at the end:
    {"h": {"height": 720, "kbit": 1480.2, "fps": 29.8, "limited_by": "none"}, ...}."""
    span = after["at"] - before["at"]
    out: dict[str, Any] = {}
    for rid, (height, sent, frames, why) in sorted(after["sent"].items()):
        start = before["sent"].get(rid, [0, 0, 0, ""])
        kbit = 8 * (sent - start[1]) / span / 1000 if span > 0 else 0.0
        fps = (frames - start[2]) / span if span > 0 else 0.0
        out[rid or "single"] = {"height": height, "kbit": round(kbit, 1), "fps": round(fps, 1),
                                "limited_by": why}  # fmt: skip
    return out


@contextlib.asynccontextmanager
async def lab_run(workdir: Path, trace: bool = False, clip: bool = True) -> AsyncIterator[Run]:
    secret = secrets.token_hex(32)
    phones = [PhoneSpec("host"), *(PhoneSpec(p, rate_kbit=r) for p, r in CAPS_KBIT.items()),
              PhoneSpec(HLS_PHONE, rate_kbit=HLS_KBIT)]  # fmt: skip
    camera: tuple[str, ...] = FAKE_CAMERA_30FPS
    if clip:
        path = workdir / "camera.mjpeg"
        size = await asyncio.to_thread(write_clip, path)
        log(f"adaptive: the host's camera clip: {size / 1e6:.1f} MB")
        camera = (*FAKE_CAMERA_30FPS, f"--use-file-for-fake-video-capture={path}")
    async with Lab.open(workdir / "lab", phones) as lab:
        # The host and the WebRTC viewers take every media place: the viewer page on
        # the HLS phone is refused node_full and plays LL-HLS, as a person's would.
        args = ["--announce-address", f"{plan.NODE_PRIVATE}={plan.NODE_PUBLIC}",
                "--media-max-sessions", str(1 + len(CAPS_KBIT))]  # fmt: skip
        args += ["--log-debug", "media.layerforward"] if trace else []
        node = await start_node(lab, workdir / "node", secret=secret, args=args)
        try:
            answer = await lab.http(
                lab.phones["host"], "POST", f"{node.url}/api/rooms",
                json={"id": ROOM, "title": "Adaptive", "store": "Netlab Store"},
                headers={"Authorization": "Bearer " + tokens.mint(
                    secret.encode(), role=tokens.Role("host"), room=ROOM, user=HOST, ttl_s=3600)},
            )  # fmt: skip
            if answer.status_code != 201:
                raise RuntimeError(f"room: {answer.status_code} {answer.text[:200]}")
            async with contextlib.AsyncExitStack() as stack:
                browsers = {
                    p.name: await stack.enter_async_context(browser_in(
                        lab, lab.phones[p.name], node.url,
                        camera if p.name == "host" else FAKE_CAMERA_30FPS,
                    ))
                    for p in phones
                }  # fmt: skip
                yield Run(lab, node, secret.encode(), browsers)
        finally:
            await node.stop()


async def body(
    window_s: float, workdir: Path, trace: Path | None = None, clip: bool = True
) -> tuple[dict[str, Any], list[str | None]]:
    """The figures, and the problems that make the run invalid."""
    async with lab_run(workdir, trace is not None, clip) as run:
        run.short = window_s < 30
        for phone, host in run.lab.phones.items():
            run.event(f"phone {phone} is {host.public}")
        simulcast = await measure(run, window_s, True)
        single = await measure(run, window_s, False)
        if trace is not None:
            lines = [ln for ln in run.node.stderr().splitlines() if "media.layerforward" in ln]
            text = "\n".join(sorted([*lines, *run.events])) + "\n"
            await asyncio.to_thread(trace.write_text, text)
    result = {"simulcast": simulcast, "single_layer": single, "hls_behind_live_s": None,
              **run.hls, "load_avg": [round(x, 1) for x in os.getloadavg()]}  # fmt: skip
    return result, [run.hls_problem]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests adaptive", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured per run")
    parser.add_argument("--short", action="store_true", help="a 15 s window")
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument(
        "--trace", type=Path, metavar="FILE",
        help="write each viewer's layer choices (estimate, loss, rates, why) and the lab's steps",
    )  # fmt: skip
    parser.add_argument(
        "--camera", choices=("clip", "pattern"), default="clip",
        help="the host's camera: the generated clip (a real camera's rates), or Chromium's "
        "own test pattern (as before: its 720p layer ~0.75 Mbit/s)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    why = unavailable()
    if why is None and not os.access(CHROMIUM, os.X_OK):
        why = f"Chromium is needed at {CHROMIUM}"
    if why is None and not HLS_JS.is_file():
        why = f"the viewer page's hls.js is needed at {HLS_JS} (make vendor)"
    if why is not None:
        return finish("adaptive", None, [why])
    window = 15.0 if args.short else args.window
    with tempfile.TemporaryDirectory(prefix="livecore-adaptive-") as tmp:
        try:
            clip = args.camera == "clip"
            result, problems = asyncio.run(body(window, Path(tmp), args.trace, clip))
        except Exception as exc:
            return finish("adaptive", None, [f"crashed: {type(exc).__name__}: {str(exc)[:300]}"])
    return finish("adaptive", result, problems)
