"""A small headless-Chromium harness for page tests, over the DevTools protocol.

    async with Browser.launch() as browser:
        page = await browser.new_page(width=390, height=844, mobile=True)
        await page.goto("http://127.0.0.1:8080/r/demo#token=...")
        await page.wait_for("document.querySelector('h1').textContent !== ''")
        title = await page.evaluate("document.title")
        await page.screenshot(Path("viewer.png"))
        assert page.errors == []

Chromium is found at ``/usr/bin/chromium`` (or ``$CHROMIUM``); without it
:func:`chromium_path` calls ``pytest.skip`` (the Makefile installs Debian's
``chromium`` with apt-get). The browser runs headless with a throw-away
profile, is driven over its DevTools websocket (the ``websockets`` package)
and can only reach 127.0.0.1: every other host name resolves to nothing, and
:meth:`Page.goto` refuses other URLs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

CHROMIUM = "/usr/bin/chromium"
ALLOWED_PREFIX = "http://127.0.0.1"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--autoplay-policy=no-user-gesture-required",
    # Nothing but loopback: any other host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class BrowserError(Exception):
    """A DevTools command failed, or a page script threw."""


def chromium_path() -> str:
    """The Chromium binary, or skip the test with the reason."""
    path = os.environ.get("CHROMIUM") or CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(
            f"Chromium not found at {path}: browser tests need it "
            "(`apt-get install chromium`, which `make test` does)"
        )
    return path


class Browser:
    """One headless Chromium process and its DevTools connection."""

    def __init__(self, proc: subprocess.Popen[bytes], profile: str, ws: ClientConnection) -> None:
        self.proc = proc
        self.profile = profile
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.pages: list[Page] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(
        cls, wait: float = 20.0, extra_flags: tuple[str, ...] = ()
    ) -> AsyncIterator[Browser]:
        """Start Chromium (skips the test when it is not installed); stop it on exit."""
        binary = chromium_path()
        profile = tempfile.mkdtemp(prefix="livecore-chromium-")
        proc, log = _start(binary, profile, extra_flags)
        browser = None
        try:
            url = await _devtools_url(proc, Path(profile), wait)
            ws = await websockets.connect(url, max_size=None, open_timeout=wait)
            browser = cls(proc, profile, ws)
            yield browser
        finally:
            if browser is not None:
                await browser.close()
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, 10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait, 10)
            log.close()
            shutil.rmtree(profile, ignore_errors=True)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("Browser.close"), 5)
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
        wait: float = 30.0,
    ) -> dict[str, Any]:  # fmt: skip
        """One DevTools command; returns its result or raises BrowserError."""
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        try:
            await self.ws.send(json.dumps(message))
            answer = await asyncio.wait_for(future, wait)
        finally:
            self._waiting.pop(command_id, None)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def on(self, session: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call ``handler`` with every event of a page session."""
        self._listeners.setdefault(session, []).append(handler)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._waiting.get(message["id"])
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    for handler in self._listeners.get(message.get("sessionId", ""), []):
                        handler(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(BrowserError("the browser connection closed"))

    async def new_page(
        self, width: int = 390, height: int = 844, *, mobile: bool = True, scale: float = 2.0
    ) -> Page:
        """A new tab with the given viewport (mobile: honours the viewport meta, touch)."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, target["targetId"], attached["sessionId"])
        await page.setup(width, height, mobile=mobile, scale=scale)
        self.pages.append(page)
        return page


def _start(
    binary: str, profile: str, extra_flags: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Chromium with a throw-away profile; its output goes to chromium.log there."""
    log = open(Path(profile) / "chromium.log", "wb")  # closed by launch()
    proc = subprocess.Popen(
        [binary, *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return proc, log


def _port_file(profile: Path) -> str | None:
    """The DevTools websocket URL from DevToolsActivePort, once Chromium wrote it."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        lines = (profile / "DevToolsActivePort").read_text().split()
        if len(lines) >= 2:
            return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
    return None


async def _devtools_url(proc: subprocess.Popen[bytes], profile: Path, wait: float) -> str:
    """Chromium writes its DevTools port and path to DevToolsActivePort in the profile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        if proc.poll() is not None:
            log = _tail(profile / "chromium.log")
            raise BrowserError(f"Chromium exited with {proc.returncode}: {log}")
        url = _port_file(profile)
        if url is not None:
            return url
        await asyncio.sleep(0.05)
    raise BrowserError(f"Chromium did not open its DevTools port within {wait} s")


class Page:
    """One tab: navigate, run scripts, wait, screenshot; collects console errors."""

    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        #: Console errors, uncaught exceptions and failed loads, as text.
        self.errors: list[str] = []
        #: Every console message, as "type: text".
        self.console: list[str] = []
        self._loaded = asyncio.Event()
        browser.on(session, self._event)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, self.session)

    async def setup(self, width: int, height: int, *, mobile: bool, scale: float) -> None:
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        await self.set_viewport(width, height, mobile=mobile, scale=scale)

    async def set_viewport(
        self, width: int, height: int, *, mobile: bool = True, scale: float = 2.0
    ) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
        )
        await self.send("Emulation.setTouchEmulationEnabled", {"enabled": mobile})

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(arg) for arg in params.get("args", []))
            self.console.append(f"{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                self.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exc = details.get("exception", {})
            text = exc.get("description") or details.get("text", "exception")
            self.errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.errors.append(
                    f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
                )

    async def goto(self, url: str, wait: float = 15.0) -> None:
        """Load ``url`` (http://127.0.0.1 only) and wait for its load event."""
        if not (url.startswith(ALLOWED_PREFIX + ":") or url.startswith(ALLOWED_PREFIX + "/")):
            raise ValueError(f"the harness only loads {ALLOWED_PREFIX} URLs, not {url!r}")
        self._loaded.clear()
        answer = await self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"cannot load {url}: {answer['errorText']}")
        await asyncio.wait_for(self._loaded.wait(), wait)

    async def evaluate(self, expression: str, *, await_promise: bool = True) -> Any:
        """The value of a JS expression (a promise is awaited); raises on a JS exception."""
        answer = await self.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": await_promise,
                "returnByValue": True,
                "userGesture": True,
            },
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression[:80]!r} threw: {text}")
        return answer.get("result", {}).get("value")

    async def wait_for(self, expression: str, wait: float = 15.0, interval: float = 0.05) -> Any:
        """Poll a JS expression until it is truthy (in JS); returns its value (True for a
        DOM node, which cannot be returned by value)."""
        probe = (
            f"Promise.resolve(({expression})).then((v) => ({{ok: !!v, "
            "v: v instanceof Node ? true : v}))"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        last: Any = None
        while True:
            try:
                answer = await self.evaluate(probe)
            except BrowserError as exc:
                last = exc
            else:
                last = answer.get("v")
                if answer.get("ok"):
                    return last
            if loop.time() > deadline:
                raise TimeoutError(
                    f"waited {wait} s for {expression!r}; last value {last!r}; "
                    f"page errors {self.errors}"
                )
            await asyncio.sleep(interval)

    async def click(self, selector: str) -> None:
        """Click the element matched by a CSS selector (through its DOM click())."""
        found = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.scrollIntoView({block: 'center'}); el.click();"
            " return true; })()"
        )
        if not found:
            raise BrowserError(f"no element matches {selector!r}")

    async def fill(self, selector: str, value: str) -> None:
        """Set an input's value and fire its input event."""
        found = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" if (!el) return false; el.focus(); el.value = {json.dumps(value)};"
            " el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true})); return true; })()"
        )
        if not found:
            raise BrowserError(f"no element matches {selector!r}")

    async def set_geolocation(self, lat: float, lng: float, origin: str | None = None) -> None:
        """Grant the geolocation permission (to ``origin``, or every origin) and
        make ``navigator.geolocation`` report this point."""
        params: dict[str, Any] = {"permissions": ["geolocation"]}
        if origin is not None:
            params["origin"] = origin
        await self.browser.send("Browser.grantPermissions", params)
        await self.send(
            "Emulation.setGeolocationOverride", {"latitude": lat, "longitude": lng, "accuracy": 20}
        )

    async def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1,
            }  # fmt: skip
        shot = await self.send("Page.captureScreenshot", params)
        return _write(path, base64.b64decode(shot["data"]))

    async def close(self) -> None:
        with contextlib.suppress(BrowserError):
            await self.browser.send("Target.closeTarget", {"targetId": self.target})


def _tail(path: Path, size: int = 2000) -> str:
    return path.read_text(errors="replace")[-size:]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _remote_text(arg: dict[str, Any]) -> str:
    if "value" in arg:
        return str(arg["value"])
    return str(arg.get("description") or arg.get("type", ""))
