"""Headless Chromium for page tests, driven by Playwright for Python.

Debian's Chromium (``/usr/bin/chromium`` or ``$CHROMIUM``) is the browser;
Playwright never downloads one. A fake camera and microphone stand in for
real devices. Every page opened with :func:`phone` records what a person
would call broken: console errors, uncaught exceptions, failed requests and
HTTP answers >= 400 (``Watch.problems``).

A missing browser skips the test on a developer machine and FAILS it under
``CI=true``: CI must never pass with the browser tests skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from loadtests.netlab.chromium import CHROMIUM
from loadtests.netlab.chromium import FLAGS as LAB_FLAGS
from tests.helpers import missing

PHONE = {"width": 390, "height": 844}
#: The lab's Chromium flags (one list for benchmarks and tests), and nothing but
#: loopback: any other host name fails to resolve.
FLAGS = [*LAB_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
#: Screenshots of the pages at phone size (git-ignored).
#: ``page.evaluate(PLAY_MUTED, element_id)``: play a page's <video> muted, as a person's
#: tap would. A play() the page's own source change interrupts (AbortError: the clip
#: page sets its src once it has read the clip) is asked again; True once playing.
PLAY_MUTED = """async (id) => {
  const v = document.getElementById(id);
  v.muted = true;
  for (let i = 0; i < 40; i++) {
    try { await v.play(); return true; } catch (e) {
      if (e.name !== 'AbortError') throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return false;
}"""
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"


def chromium_path() -> str:
    """The Chromium binary; without one, skip (or fail under CI=true)."""
    path = os.environ.get("CHROMIUM") or CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        why = (
            f"Chromium not found at {path}: browser tests need it "
            "(`apt-get install chromium`, which `make test` does)"
        )
        missing(why)
    return path


@contextlib.asynccontextmanager
async def launch(
    executable: str | None = None, extra_flags: Sequence[str] = ()
) -> AsyncIterator[Browser]:
    """One headless Chromium for a module's tests (``executable``: e.g. a wrapper that
    runs it inside a network namespace; ``extra_flags`` after the usual ones)."""
    binary = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable or binary, args=[*FLAGS, *extra_flags], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watch:
    """What went wrong on a page, as a person would notice it."""

    page: Page
    problems: list[str] = field(default_factory=list)
    #: Substrings of problems a test expects (e.g. a node it stopped on purpose).
    allowed: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        return [p for p in self.problems if not any(a in p for a in self.allowed)]


async def phone(
    browser: Browser,
    *,
    width: int = PHONE["width"],
    height: int = PHONE["height"],
    mobile: bool = True,
    geolocation: tuple[float, float] | None = None,
    locale: str = "zh-CN",
    scale: float | None = None,
) -> tuple[Page, Watch]:
    """A fresh context (its own localStorage: one device) and page, watched for problems."""
    options: dict[str, Any] = {
        "viewport": {"width": width, "height": height},
        "device_scale_factor": scale or (2 if mobile else 1),
        "is_mobile": mobile,
        "has_touch": mobile,
        "locale": locale,
    }
    if geolocation is not None:
        options["geolocation"] = {"latitude": geolocation[0], "longitude": geolocation[1]}
        options["permissions"] = ["geolocation"]
    context: BrowserContext = await browser.new_context(**options)
    page = await context.new_page()
    watch = Watch(page)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "") if msg.location else ""
            watch.problems.append(f"console: {msg.text} at {where}")

    def on_failed(request: Request) -> None:
        failure = request.failure or "failed"
        if "ERR_ABORTED" in failure:  # navigation away / media element reloads
            return
        watch.problems.append(f"request failed: {request.method} {request.url} ({failure})")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            watch.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.problems.append(f"page error: {exc}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return page, watch


async def shot(page: Page, name: str) -> Path:
    """A phone-size screenshot under screenshots/ (git-ignored)."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def wait_js(page: Page, expression: str, timeout_s: float = 15.0) -> Any:
    """Wait until ``expression`` (JS) is truthy in the page; returns its value.

    The expression may be a promise (an async function's call, e.g. reading
    ``getStats()``): it is awaited each time, which Playwright's
    ``wait_for_function`` does not do (a pending promise counted as true, so
    such a wait returned at once with whatever the promise gave). An
    expression that throws (the page's objects not made yet, on a loaded
    machine) counts as not yet true; if it is still not true at the timeout,
    the error says what it evaluates to (or throws) then."""
    guarded = (
        f"async () => {{ try {{ return await ({expression}); }} catch (e) {{ return false; }} }}"
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            value = await page.evaluate(guarded)
        except PlaywrightError:  # a navigation destroyed the context: not yet
            value = None
        if value:
            return value
        if loop.time() >= deadline:
            break
        await asyncio.sleep(0.1)  # the polling step of this wait, as wait_for_function's
    try:
        now = await page.evaluate(f"async () => await ({expression})")
    except PlaywrightError as exc:
        now = f"it throws {exc.message.splitlines()[0]}"
    raise AssertionError(f"{expression} not true within {timeout_s} s: {now!r}")
