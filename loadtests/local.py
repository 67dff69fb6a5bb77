"""A local livecore deployment for a benchmark: one private Valkey and K nodes.

Everything listens on 127.0.0.1, is pinned to the "server" CPU, and is torn
down when the context exits. With ``--target`` a benchmark skips this and
talks to running nodes instead (the token secret then comes from
``$LIVECORE_SECRET``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from redis.crc import key_slot

from livecore import tokens
from livecore.store import keys
from livecore.valkey.cluster import LocalCluster
from livecore.valkey.embedded import EmbeddedValkey

SERVER_CPU = 0
LOAD_CPU = 1


def pin(pid: int, cpu: int) -> None:
    """Pin a process to one CPU when the machine has it (no-op elsewhere)."""
    with contextlib.suppress(AttributeError, OSError):
        if cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(pid, {cpu})


def is_worker(proc: psutil.Process) -> bool:
    """A worker spawned by ``serve --workers`` (not a Valkey, nor multiprocessing's
    resource tracker)."""
    try:
        return "spawn_main" in " ".join(proc.cmdline())
    except psutil.Error:  # gone, or a zombie its supervisor has not reaped yet
        return False


#: ``free_port`` hands out ports from 10000-19999: below the kernel's ephemeral range
#: (32768 and up on Linux), where every outgoing connection takes its port (a port the
#: OS picked free could be some client's before the node bound it), and below the
#: local Valkey Cluster's (20000 and up). A process takes one slice of ``PORT_SLICE``
#: (a pytest-xdist worker the slice of its number), so concurrent workers do not race.
PORT_BASE, PORT_SLICE, PORT_SLICES = 10_000, 1_000, 10
_next_port: list[int] = []


def free_port() -> int:
    """A port on 127.0.0.1 free now for TCP and UDP, from this process's slice (above)."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free now, from this process's slice; the
    next ones handed out come after them (a server binding ``first + i`` keeps them)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker[:2] == "gw" and worker[2:].isdigit() else os.getpid()
    start = PORT_BASE + index % PORT_SLICES * PORT_SLICE
    if not _next_port:
        _next_port.append(start + secrets.randbelow(PORT_SLICE))
    for _ in range(PORT_SLICE):
        first = _next_port[0]
        if first + count > start + PORT_SLICE:
            first = start
        _next_port[0] = start + (first - start + count) % PORT_SLICE
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} free ports between {start} and {start + PORT_SLICE - 1}")


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@dataclass
class Cluster:
    """Node URLs, the secret to mint tokens with, and the processes to watch."""

    urls: list[str]
    secret: bytes
    pids: list[int] = field(default_factory=list)
    store_pid: int | None = None
    redis_url: str | None = None
    #: The benchmarks' ``store`` field: "valkey" or "cluster:<primaries>".
    store: str = "valkey"
    #: Every store process (one Valkey, or each node of a Valkey Cluster).
    store_pids: list[int] = field(default_factory=list)
    #: The local Valkey Cluster the nodes run on (None: one Valkey, or ``--target``).
    valkey_cluster: LocalCluster | None = None

    def token(self, role: str, user: str, room: str, ttl_s: int = 3600) -> str:
        return tokens.mint(self.secret, role=tokens.Role(role), room=room, user=user, ttl_s=ttl_s)

    def create_room(self, room: str, *, timeout_s: float = 60.0) -> None:
        """Create ``room`` (409 'already exists' is fine). A node takes a burst of 20 HTTP
        writes per user, then 5/s: a 429 is retried after its ``Retry-After``."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = httpx.post(
                f"{self.urls[0]}/api/rooms",
                json={"id": room, "title": f"Load test {room}", "store": "livecore loadtests"},
                headers={"Authorization": f"Bearer {self.token('host', 'loadtest-host', room)}"},
                timeout=10,
            )
            wait = float(answer.headers.get("retry-after") or 1)
            if answer.status_code != 429 or time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
        if answer.status_code not in (201, 409):
            raise RuntimeError(f"creating room {room}: {answer.status_code} {answer.text}")

    def processes(self) -> list[psutil.Process]:
        """The nodes' processes, with the workers of a node run as ``serve --workers``."""
        procs = [psutil.Process(pid) for pid in self.pids]
        return procs + [kid for p in procs for kid in p.children() if is_worker(kid)]

    def store_processes(self) -> list[psutil.Process]:
        return [psutil.Process(pid) for pid in self.store_pids]

    def rooms_per_shard(self, rooms: list[str]) -> list[int] | None:
        """How many of ``rooms`` each primary of the local Valkey Cluster holds, primaries
        in the order of their slots (None on one Valkey). A room's keys share its hash
        tag, so its meta key's slot is the room's slot."""
        if self.valkey_cluster is None:
            return None
        primaries = sorted(
            (n for n in self.valkey_cluster.table() if n.primary and not n.failed and n.slots),
            key=lambda n: min(n.slots),
        )
        counts = [0] * len(primaries)
        for room in rooms:
            slot = key_slot(keys.room(room, "meta").encode())
            owner = next((i for i, n in enumerate(primaries) if n.serves(slot)), None)
            if owner is None:
                raise RuntimeError(f"no live primary serves slot {slot} (room {room})")
            counts[owner] += 1
        return counts


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node {url} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"node {url} not healthy within {timeout:.0f} s")


def _wait_banner(log: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        if b"workers on port" in log.read_bytes():
            return
        time.sleep(0.1)
    raise RuntimeError(f"the workers did not all listen within {timeout:.0f} s")


def communities_file(directory: Path, names: list[str]) -> Path:
    """A ``--communities`` file registering ``names`` (placed on a grid in Hangzhou)."""
    rows = [{"id": name, "name": f"小区 {i + 1}", "lat": 30.25 + 0.01 * (i // 10),
             "lng": 120.10 + 0.01 * (i % 10), "radius_m": 300}
            for i, name in enumerate(names)]  # fmt: skip
    path = directory / "communities.json"
    path.write_text(json.dumps({"communities": rows}, ensure_ascii=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def local_cluster(
    nodes: int,
    extra_args: list[str] | None = None,
    *,
    communities: list[str] | None = None,
    shards: int = 0,
    workers: int = 1,
) -> Any:
    """Start a Valkey and ``nodes`` nodes on loopback; yields a :class:`Cluster`.

    ``workers`` > 1: each node is ``serve --workers`` of that many processes, left
    to the kernel's scheduler over every CPU (one pinned core would make them moot).

    ``communities``: compound ids the nodes register at start (a group join is
    accepted only for a community in the registry). ``shards`` ≥ 3: a Valkey
    Cluster of that many primaries instead of one Valkey (pinned to the same
    server CPU, so a comparison with one Valkey is like for like)."""
    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="livecore-load-") as tmp:
        extra_args = list(extra_args or [])
        if communities:
            extra_args += ["--communities", str(communities_file(Path(tmp), communities))]
        store: EmbeddedValkey | LocalCluster
        if shards:
            store = LocalCluster(Path(tmp) / "cluster", primaries=shards)
            store.start()
            store_url, kind = store.url, store.store
            store_pids = [n.process.pid for n in store.nodes if n.process is not None]
        else:
            store = EmbeddedValkey(Path(tmp) / "valkey", tcp_port=free_port())
            store.start()
            assert store.process is not None
            store_url, kind, store_pids = store.tcp_url, "valkey", [store.process.pid]
        for pid in store_pids:
            pin(pid, SERVER_CPU)
        procs: list[subprocess.Popen[bytes]] = []
        # The store URL holds its password: in the environment, never on a command line.
        env = {**os.environ, "LIVECORE_SECRET": secret, "LIVECORE_REDIS": store_url}
        try:
            urls = []
            for i in range(nodes):
                port = free_port()
                cmd = [sys.executable, "-m", "signalling", "serve", "--port", str(port),
                       "--data-dir", str(Path(tmp) / f"node{i}"), "--node-id", f"load-{i}",
                       "--log-level", "warning",
                       # every virtual viewer comes from 127.0.0.1: no per-address cap
                       "--ws-max-per-ip", "0", "--workers", str(workers),
                       *(extra_args or [])]  # fmt: skip
                log = open(Path(tmp) / f"node{i}.log", "wb")
                proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
                procs.append(proc)
                if workers == 1:
                    pin(proc.pid, SERVER_CPU)
                urls.append(f"http://127.0.0.1:{port}")
            for i, (url, proc) in enumerate(zip(urls, procs, strict=True)):
                _wait_healthy(url, proc)
                if workers > 1:  # the banner comes once every worker listens
                    _wait_banner(Path(tmp) / f"node{i}.log", proc)
            yield Cluster(
                urls, secret.encode(), [p.pid for p in procs], store_pids[0], store_url, kind,
                store_pids=store_pids, valkey_cluster=store if isinstance(store, LocalCluster)
                else None,
            )  # fmt: skip
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            store.stop()


def non_loopback(urls: list[str]) -> list[str]:
    """The hosts of ``urls`` that are not loopback (127.0.0.0/8, ::1, localhost)."""
    bad = []
    for url in urls:
        host = httpx.URL(url).host
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
            bad.append(host or url)
    return bad


def target_cluster(urls: list[str], *, allow_remote: bool = False) -> Cluster:
    """Nodes someone else runs; tokens are minted with ``$LIVECORE_SECRET``.

    Refuses targets that are not loopback unless ``allow_remote``.
    """
    bad = non_loopback(urls)
    if bad and not allow_remote:
        raise SystemExit(f"--target must be a loopback address, got {', '.join(bad)}")
    secret = os.environ.get("LIVECORE_SECRET")
    if not secret:
        raise SystemExit("--target needs LIVECORE_SECRET (the nodes' token secret) to mint tokens")
    return Cluster(urls, secret.encode())


def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    """``--cluster PRIMARIES``: the benchmark's local nodes on a Valkey Cluster."""
    parser.add_argument(
        "--cluster",
        type=int,
        default=0,
        metavar="PRIMARIES",
        help="run the local nodes on a Valkey Cluster of PRIMARIES (≥ 3) primaries "
        "instead of one Valkey",
    )
