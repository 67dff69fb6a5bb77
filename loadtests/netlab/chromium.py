"""Chromium in a lab phone, for benchmarks: Playwright, the pages' own WHIP/WHEP code.

The same browser as the page tests (Debian's ``/usr/bin/chromium``, never a
downloaded one; a fake camera; headless), started inside a phone's namespace
through :meth:`Lab.chromium`. The page's origin is plain http on a lab
address: Chromium treats it as secure (for the camera) and lets it through
its resolver rules (``origin_flags``). The snippets time what a person sees:
the first painted frame, frames decoded per second, frames of a page's stage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

from loadtests.netlab import plan
from loadtests.netlab.lab import Host, Lab

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def origin_flags(origin: str, *also: str) -> list[str]:
    """A secure context for ``origin`` (``http://ADDR:PORT``), and ADDR (and ``also``)
    let through the resolver rules, which send every other host to NOTFOUND. The
    rules apply to IP literals too, and to a TURN server reached over TCP: without
    its address excluded, Chromium's allocation fails (error 701, no relay)."""
    address = origin.split("//", 1)[1].rsplit(":", 1)[0]
    excluded = "".join(f", EXCLUDE {a}" for a in ("127.0.0.1", address, *also))
    return [
        f"--unsafely-treat-insecure-origin-as-secure={origin}",
        f"--host-resolver-rules=MAP * ~NOTFOUND{excluded}",
    ]


@contextlib.asynccontextmanager
async def browser_in(
    lab: Lab, phone: Host, origin: str, extra: Sequence[str] = ()
) -> AsyncIterator[Browser]:
    """A headless Chromium whose every packet leaves from ``phone``, the node at
    ``origin`` and the lab's TURN server reachable; closed on exit. ``extra``
    flags come last (a later flag of the same name wins)."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(lab.chromium(phone, CHROMIUM)),
            args=[*FLAGS, *origin_flags(origin, plan.TURN_PUBLIC), *extra],
            headless=True,
        )
        try:
            yield browser
        finally:
            await browser.close()


async def wait_js(page: Page, expression: str, timeout_s: float) -> Any:
    """Wait until ``expression`` is truthy in ``page`` (one that throws counts as not
    yet); its value. Raises ``TimeoutError`` with what it is at the end."""
    guarded = f"() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }}"
    try:
        handle = await page.wait_for_function(guarded, timeout=timeout_s * 1000, polling=100)
    except Exception as exc:  # Playwright's TimeoutError, or the page closed
        raise TimeoutError(f"{expression} not true within {timeout_s} s") from exc
    return await handle.json_value()


#: Play ``publisher`` in ``room`` through the pages' media.js (WHEP) until the first
#: frame is painted: ms from the start (ICE servers fetched, offer gathered, POSTed,
#: answered, ICE, DTLS, keyframe) to that frame. ``window.play`` stays open.
FIRST_FRAME = """async ([room, token, publisher, waitMs]) => {
  const m = await import('/static/media.js');
  const t0 = performance.now();
  const play = await m.watch(room, token, publisher);
  window.play = play;
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true; video.autoplay = true;
  document.body.appendChild(video);
  video.srcObject = play.stream;
  const frame = new Promise((resolve) => video.requestVideoFrameCallback(resolve));
  const late = new Promise((_, reject) => setTimeout(
    () => reject(new Error('no frame within ' + waitMs + ' ms, ice ' + play.pc.iceConnectionState)),
    waitMs));
  video.play().catch(() => {});
  await Promise.race([frame, late]);
  window.video = video;
  return performance.now() - t0;
}"""

#: Frames decoded by ``window.play``, and the selected candidate pair's local side.
PLAY_STATS = """async () => {
  let frames = 0, width = 0, height = 0, pair = null;
  const reports = await window.play.pc.getStats();
  reports.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      frames += r.framesDecoded || 0; width = r.frameWidth || 0; height = r.frameHeight || 0;
    }
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = r.selectedCandidatePairId;
  });
  let local = null;
  if (pair) {
    const p = reports.get(pair);
    const c = p && reports.get(p.localCandidateId);
    if (c) local = { type: c.candidateType, relayProtocol: c.relayProtocol || null,
                     protocol: c.protocol };
  }
  return { frames, width, height, local, at: performance.now() };
}"""

#: Frames of ``user``'s stream a room page (viewer.html) decoded on its stage's
#: current session, and that session's tag (a page that recovers makes a new one):
#: ``{id, frames}``, ``id`` null while there is none.
STAGE_FRAMES = """async (user) => {
  const entry = window.livecore && window.livecore.stage && window.livecore.stage.players.get(user);
  if (!entry || !entry.session || !entry.session.pc) return { id: null, frames: 0 };
  const s = entry.session;
  if (!s.netlabId) s.netlabId = Math.random().toString(36).slice(2);
  let frames = 0;
  (await s.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return { id: s.netlabId, frames };
}"""

#: The room page's channel is live (its websocket joined).
CHANNEL_LIVE = (
    "window.livecore && window.livecore.channel && window.livecore.channel.status === 'live'"
)

#: The comments a room page holds (its channel's model, the last 200) and shows
#: (its list, the last 60), as text: ``[model, shown]``.
SHOWN_COMMENTS = """() => [
  ((window.livecore && window.livecore.channel && window.livecore.channel.model.comments) || [])
    .map((c) => c.text),
  [...document.querySelectorAll('#comments li')].map((li) => li.textContent),
]"""


async def play_fps(page: Page, window_s: float) -> dict[str, Any]:
    """Frames ``window.play`` decoded per second over ``window_s``, with its frame
    size and the local side of the selected candidate pair."""
    first = await page.evaluate(PLAY_STATS)
    await asyncio.sleep(window_s)
    last = await page.evaluate(PLAY_STATS)
    elapsed = (last["at"] - first["at"]) / 1000
    fps = (last["frames"] - first["frames"]) / elapsed if elapsed > 0 else 0.0
    return {"fps": fps, "width": last["width"], "height": last["height"], "local": last["local"]}


async def next_stage_frame(page: Page, user: str, timeout_s: float) -> float | None:
    """Seconds until the room page decodes a new frame of ``user``: one more on the
    session it has now, or any on a session it makes later (None: none within
    ``timeout_s``); polled every 50 ms."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    base = await page.evaluate(STAGE_FRAMES, user)
    while loop.time() - started < timeout_s:
        now = await page.evaluate(STAGE_FRAMES, user)
        if now["id"] is not None and (
            now["frames"] > base["frames"] if now["id"] == base["id"] else now["frames"] > 0
        ):
            return loop.time() - started
        await asyncio.sleep(0.05)
    return None
