"""A Valkey and livecore nodes as real processes, each killable and restartable."""

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

from livecore import tokens
from livecore.valkey.embedded import EmbeddedValkey
from loadtests.local import free_port, free_ports, is_worker

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "faults-secret-" + "f" * 40
FAST = ["--ws-message-rate", "10000", "--comment-rate", "1000", "--comment-burst", "1000",
        "--ws-max-per-ip", "0", "--log-level", "warning"]  # fmt: skip


#: redis-py's cluster pub/sub logs this, with a traceback, when it moves a shard
#: channel to a new owner after a failover while the old connection is being read
#: ("read() called while another coroutine is already waiting"); it carries on,
#: and the node's bus reader reconnects. Reported apart from crashes.
LIBRARY_RECOVERED = "shard subscription reconciliation failed"

#: Settings the scenarios shorten, and their flags.
FLAGS = {"ws_ping_interval_s": "ws-ping-interval", "ws_idle_timeout_s": "ws-idle-timeout",
         "ws_drain_timeout_s": "ws-drain-timeout",
         "ws_socket_send_buffer": "ws-socket-send-buffer"}  # fmt: skip


#: What the supervisor of ``serve --workers`` logs when a worker died.
WORKER_DIED = "starting it again in"


def mint(role: str, user: str, room: str = "r1", ttl: int = 3600, **kw: str) -> str:
    return tokens.mint(SECRET.encode(), role=tokens.Role(role), room=room, user=user,
                       ttl_s=ttl, **kw)  # type: ignore[arg-type]  # fmt: skip


@dataclass
class NodeProc:
    """One ``livecore serve`` process."""

    data_dir: Path
    redis_url: str
    args: list[str] = field(default_factory=list)
    #: Short keep-alive and drain timers (Settings field → value), passed as flags.
    settings: dict[str, float] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    #: Node processes behind the port (``serve --workers``); each serves its own
    #: /metrics on ``metrics_port + i`` when there are several.
    workers: int = 1
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> NodeProc:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
        env["LIVECORE_SECRET"] = SECRET
        env["LIVECORE_REDIS"] = self.redis_url  # it holds a password: not on a command line
        flags = [f"--{FLAGS[name]}={value}" for name, value in self.settings.items()]
        if self.workers > 1:
            self.metrics_port = free_ports(self.workers)
            flags += [f"--workers={self.workers}",
                      f"--metrics-listen=127.0.0.1:{self.metrics_port}"]  # fmt: skip
        cmd = [
            sys.executable,
            "-m",
            "signalling",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *FAST,
            *flags,
            *self.args,
        ]
        log = (self.data_dir / "node.log").open("ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited {self.proc.returncode}: {self.log()[-1500:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node {self.port} not healthy in {timeout} s")

    def log(self) -> str:
        path = self.data_dir / "node.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def processes(self) -> list[psutil.Process]:
        """The node's processes: the one node, or the supervisor and its workers."""
        assert self.proc is not None
        top = psutil.Process(self.proc.pid)
        if self.workers == 1:
            return [top]
        return [top, *(p for p in top.children() if is_worker(p))]

    def metrics_urls(self) -> list[str]:
        """Where each node process serves /metrics (every worker its own)."""
        if self.workers == 1:
            return [self.url]
        return [f"http://127.0.0.1:{self.metrics_port + i}" for i in range(self.workers)]

    def fds(self) -> int:
        return sum(int(p.num_fds()) for p in self.processes())

    def client_sockets(self) -> int:
        """TCP connections the node accepted (clients'), listening socket excluded."""
        conns = [c for p in self.processes() for c in p.net_connections("tcp")]
        return sum(1 for c in conns if c.laddr and c.laddr.port == self.port and c.raddr)

    def fds_besides_store(self) -> int:
        """Open fds less the connections to the store (its pool, bounded, opens
        connections as concurrency needs them: growth there is not a leak)."""
        total = 0
        for proc in self.processes():
            conns = proc.net_connections("tcp")
            ours = {self.port}
            store = sum(1 for c in conns if c.raddr and c.raddr.port not in ours
                        and c.laddr and c.laddr.port not in ours)  # fmt: skip
            total += int(proc.num_fds()) - store
        return total

    def rss_mb(self) -> float:
        return sum(float(p.memory_info().rss) for p in self.processes()) / 2**20

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the node's processes used so far."""
        return sum(sum(p.cpu_times()[:2]) for p in self.processes())

    def crashed(self) -> int:
        """Unhandled errors in the node's log (tracebacks), and 1 if it died.

        Not counted: redis-py's own logged-and-recovered race (LIBRARY_RECOVERED,
        see :meth:`library_errors`)."""
        text = self.log()
        died = 1 if self.proc is not None and self.proc.poll() not in (None, 0, -15) else 0
        died += text.count(WORKER_DIED)  # a worker the supervisor had to start again
        tracebacks = text.count("Traceback (most recent call last)")
        return tracebacks - text.count(LIBRARY_RECOVERED) + died

    def library_errors(self) -> int:
        """Tracebacks redis-py logged for errors it recovered from by itself."""
        return self.log().count(LIBRARY_RECOVERED)


class Valkey:
    """The store process, SIGKILL-able and restartable on the same port and data."""

    def __init__(self, root: Path) -> None:
        self.server = EmbeddedValkey(root / "valkey", tcp_port=free_port(), fsync="always")

    @property
    def url(self) -> str:
        return self.server.tcp_url

    def start(self) -> None:
        self.server.start()

    def kill(self) -> None:
        proc = self.server.process
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.server.stop()  # releases the directory lock

    def stop(self) -> None:
        self.server.stop()


def create_room(node: NodeProc, room: str = "r1", host: str = "host1") -> None:
    answer = httpx.post(
        f"{node.url}/api/rooms", json={"id": room, "title": "Faults", "store": "Test"},
        headers={"Authorization": f"Bearer {mint('host', host, room)}"},
    )  # fmt: skip
    answer.raise_for_status()
