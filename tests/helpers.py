"""Test helpers: free ports, a real node started as a subprocess, process checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from loadtests.local import free_port as free_port  # the tests' ports: the same slices

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-" + "x" * 40


def missing(why: str) -> None:
    """A test's real part (a browser, coturn, GStreamer, network namespaces) is missing:
    fail under ``CI=true`` (CI must never pass with the test skipped), else skip."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(why)
    pytest.skip(why)


def valkey_children(pid: int) -> list[psutil.Process]:
    """valkey-server processes started by ``pid`` (alive or zombie)."""
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [k for k in kids if "valkey" in " ".join(_cmdline(k))]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@dataclass
class Node:
    """A ``livecore serve`` subprocess on 127.0.0.1."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    redis_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "signalling", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir), "--log-level", "warning"]
        return cmd + self.extra_args

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
        env["LIVECORE_SECRET"] = TEST_SECRET
        if self.redis_url:  # the URL holds a password: never on a command line
            env["LIVECORE_REDIS"] = self.redis_url
        env.update(self.extra_env)
        return env

    @property
    def stdout_path(self) -> Path:
        return self.data_dir.parent / f"node-{self.port}.out"

    @property
    def stderr_path(self) -> Path:
        return self.data_dir.parent / f"node-{self.port}.err"

    def output(self) -> str:
        """What the node printed on stdout so far."""
        return self.stdout_path.read_text()

    def start(self, timeout: float = 30.0) -> Node:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            # Files, not pipes: a chatty node must never block on a full pipe.
            self.proc = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env(), stdout=out, stderr=err, text=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err_text = self.stderr_path.read_text()
                raise RuntimeError(f"node exited {self.proc.returncode}: {err_text[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # a node is up in about a second: poll its health often
        self.stop()
        raise RuntimeError(f"node on port {self.port} not healthy within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def token(role: str, user: str, room: str = "r1", ttl: int = 600, **kw: object) -> str:
    """A token signed with the test secret."""
    from livecore import tokens

    return tokens.mint(
        TEST_SECRET.encode(), role=tokens.Role(role), room=room, user=user, ttl_s=ttl, **kw
    )  # type: ignore[arg-type]


def create_room(base_url: str, room: str = "r1", host: str = "host1") -> None:
    """Create ``room`` through the REST API as its host."""
    answer = httpx.post(
        f"{base_url}/api/rooms",
        json={"id": room, "title": f"Room {room}", "store": "Test Store"},
        headers={"Authorization": f"Bearer {token('host', host, room)}"},
    )
    assert answer.status_code == 201, answer.text
