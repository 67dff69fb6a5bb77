"""What the page tests share: a node with a room, Python clients, page helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from clients.python.room import RoomClient
from tests.browser import Watch, chromium_path, phone, wait_js
from tests.helpers import Node, create_room, token

XIXI = "hz-xixi-chengyuan"
#: Inside 西溪澄园 (its centre).
IN_XIXI = (30.26894, 120.12791)
#: 700 m south of 西溪澄园 (radius 600 m), inside no community.
OUTSIDE_XIXI = (30.2620, 120.1279)
LIVE = "window.livecore && window.livecore.channel && window.livecore.channel.status === 'live'"
CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")

#: Frames of ``user``'s stream decoded by the page (WebRTC getStats).
FRAMES = """async (user) => {
  const entry = window.livecore && window.livecore.stage && window.livecore.stage.players.get(user);
  if (!entry || !entry.session) return 0;
  let frames = 0;
  (await entry.session.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames;
}"""


def js(value: Any) -> str:
    return json.dumps(value)


async def frames_decoded(page: Page, user: str, at_least: int, wait: float = 30.0) -> int:
    """Wait until the page decoded ``at_least`` video frames of ``user``."""
    deadline = time.monotonic() + wait
    frames = 0
    while time.monotonic() < deadline:
        frames = int(await page.evaluate(FRAMES, user))
        if frames >= at_least:
            return frames
        await asyncio.sleep(0.2)
    raise AssertionError(f"decoded only {frames} frames of {user}")


async def wait_event(
    client: RoomClient, match: Callable[[dict[str, Any]], bool], wait: float = 10
) -> dict[str, Any]:
    """The client's next event that matches (others are skipped)."""
    while True:
        event = await client.next_event(wait=wait)
        if match(event):
            return event


async def text_of(page: Page, selector: str) -> str:
    return str(await page.evaluate(f"document.querySelector({js(selector)})?.textContent || ''"))


async def has_comment(page: Page, text: str, wait: float = 10) -> None:
    await wait_js(
        page,
        "[...document.querySelectorAll('#comments li')]"
        f".some((li) => li.textContent.includes({js(text)}))",
        wait,
    )


async def no_horizontal_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size or {"width": 0}
    assert width <= viewport["width"], f"page is {width} px wide at {viewport['width']} px"


async def go_live(host: Page) -> None:
    """The host page goes live from the fake camera; its badge says so."""
    await wait_js(host, LIVE)
    await host.click("#golive")
    await wait_js(host, "!!window.livecore.stage.publishing", 20)
    await wait_js(host, "document.querySelector('#room-status').dataset.status === 'live'")


@contextlib.asynccontextmanager
async def live_at_capacity(
    tmp_path: Path, redis_url: str, browser: Browser
) -> AsyncIterator[tuple[Node, Page, Watch]]:
    """A node whose WebRTC capacity is its host alone (``--media-max-sessions 1``: every
    viewer page is sent to HLS), room r1, and the host page live on it."""
    chromium_path()
    node = Node(tmp_path / "full", redis_url=redis_url, extra_args=["--media-max-sessions", "1"])
    node.start()
    try:
        create_room(node.url)
        host, host_watch = await phone(browser)
        await host.goto(f"{node.url}/host/r1#token={token('host', 'host1')}")
        await go_live(host)
        yield node, host, host_watch
    finally:
        node.stop()


def visible_cjk(page_text: str) -> list[str]:
    """Lines of visible text that still hold Chinese (the switch back, 中文, is meant to)."""
    return [line for line in page_text.splitlines() if CJK.search(line) and line.strip() != "中文"]


def clean(watch: Watch, *allowed: str) -> list[str]:
    watch.allowed.extend(allowed)
    return watch.errors()
