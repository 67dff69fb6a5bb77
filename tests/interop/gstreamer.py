"""Driving the GStreamer peer (``gstpeer.py``, run by Debian's Python) from a test.

``require_gstreamer()`` checks once that Debian's Python has PyGObject, the
typelibs and every element the peer needs; without them a test is skipped on a
developer machine and FAILS under ``CI=true`` (``make system`` installs them).
``GstPeer`` starts one publisher or player, collects the JSON events it prints,
and waits on them (never a sleep that hopes something happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import missing
from tests.waiting import eventually

#: Debian's interpreter (python3-gi is built for it, not for the project's venv).
GST_PYTHON = os.environ.get("LIVECORE_GST_PYTHON", "/usr/bin/python3")
SCRIPT = Path(__file__).with_name("gstpeer.py")
Event = dict[str, Any]


@functools.cache
def _check() -> Event:
    if not os.access(GST_PYTHON, os.X_OK):
        return {"ok": False, "missing": [GST_PYTHON]}
    done = subprocess.run(
        [GST_PYTHON, str(SCRIPT), "check"], capture_output=True, text=True, timeout=60
    )
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"ok": False, "missing": [f"gstpeer check failed: {done.stderr[-500:]}"]}
    return dict(json.loads(lines[-1]))


def require_gstreamer() -> Event:
    """What ``gstpeer.py check`` found (encoder, decoder, versions); skip, or fail
    under CI=true, when GStreamer's WebRTC stack is not installed."""
    found = _check()
    if not found["ok"]:
        why = (
            f"GStreamer webrtcbin not usable from {GST_PYTHON}: missing "
            f"{', '.join(found['missing'])} (`make system` installs it)"
        )
        missing(why)
    return found


def _log_path(log_dir: Path, command: str) -> Path:
    """A new file under ``log_dir`` for one peer's stderr (GStreamer's warnings)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"gst-{command}-{len(list(log_dir.glob('gst-*')))}.err"


@dataclass
class GstPeer:
    """One ``gstpeer.py publish|play`` subprocess and the events it printed so far."""

    proc: asyncio.subprocess.Process
    stderr_path: Path
    events: list[Event] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, command: str, url: str, token: str, *args: str,
                    log_dir: Path, netns: str | None = None) -> GstPeer:  # fmt: skip
        """Start ``gstpeer.py command url *args``; the token goes in the environment.
        ``netns``: inside that network namespace (a lab's phone: ``ip netns exec``, which
        execs the peer, so its PID is the peer's)."""
        stderr_path = _log_path(log_dir, command)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
        env["WHIP_TOKEN"] = token
        env.setdefault("GST_DEBUG", "1")
        with stderr_path.open("w") as err:
            inside = ["ip", "netns", "exec", netns] if netns is not None else []
            proc = await asyncio.create_subprocess_exec(
                *inside, GST_PYTHON, str(SCRIPT), command, url, *args,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
            )  # fmt: skip
        peer = cls(proc, stderr_path)
        peer.reader = asyncio.ensure_future(peer._read())
        return peer

    async def _read(self) -> None:
        """Collect the events; a copy goes beside stderr (``.events``), to read after a failure."""
        assert self.proc.stdout is not None
        with self.stderr_path.with_suffix(".events").open("wb") as copy:
            async for line in self.proc.stdout:
                copy.write(line)
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))

    def find(self, name: str, match: Callable[[Event], bool] = lambda e: True) -> Event | None:
        return next((e for e in self.events if e["event"] == name and match(e)), None)

    def last(self, name: str) -> Event:
        found = [e for e in self.events if e["event"] == name]
        assert found, f"no {name!r} event yet: {self.events[-5:]}"
        return found[-1]

    async def wait_for(self, name: str, within: float = 15.0,
                       match: Callable[[Event], bool] = lambda e: True) -> Event:  # fmt: skip
        """The first ``name`` event that matches; fails on an ``error`` event or an exit
        before it."""

        def seen() -> Event | None:
            found = self.find(name, match)
            if found is not None:
                return found
            failed = self.find("error")
            assert failed is None, f"gstpeer failed: {failed}; stderr: {self.stderr()}"
            if self.proc.returncode is not None:
                raise AssertionError(f"gstpeer exited {self.proc.returncode} before {name!r}: "
                                     f"{self.events[-5:]}; stderr: {self.stderr()}")  # fmt: skip
            return found

        return await eventually(seen, within=within, what=f"gstpeer event {name!r}")

    async def stats_reach(self, key: str, at_least: int, within: float = 15.0) -> Event:
        """The first stats line with ``key`` ≥ ``at_least``."""
        return await self.wait_for("stats", within, lambda e: e[key] >= at_least)

    async def stop(self, within: float = 15.0) -> int:
        """Ask it to stop (it DELETEs its session), and wait for its exit status."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.proc.stdin.write(b"stop\n")
                await self.proc.stdin.drain()
        try:
            code = await asyncio.wait_for(self.proc.wait(), within)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self.reader is not None:
            await self.reader
        return code

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-1500:]

    async def close(self) -> None:
        """Kill it if it still runs (a failed test's cleanup)."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.reader is not None:
            await self.reader
