"""The local Valkey Cluster: real valkey-server processes joined by valkey-cli."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import redis
from redis.crc import key_slot

from livecore.store.client import cluster_seeds
from livecore.valkey.cluster import SLOTS, ClusterNodeInfo, LocalCluster, free_ports
from tests.helpers import ROOT, wait_gone


def test_cluster_of_three_serves_every_slot(valkey_cluster: LocalCluster) -> None:
    """Three primaries share the 16,384 slots; the URL lists every node as a seed."""
    table = valkey_cluster.table()
    primaries = [n for n in table if n.primary]
    assert len(primaries) == 3
    assert sum(hi - lo + 1 for n in primaries for lo, hi in n.slots) == SLOTS
    seeds, password = cluster_seeds(valkey_cluster.url.partition("://")[2])
    assert [port for _, port in seeds] == valkey_cluster.ports
    assert password == valkey_cluster.password
    assert valkey_cluster.store == "cluster:3"


def test_secrets_stay_off_command_lines_and_out_of_sight(valkey_cluster: LocalCluster) -> None:
    """The shared password is in 0600 files in 0700 directories, in no process's argv."""
    root = valkey_cluster.data_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "password").stat().st_mode) == 0o600
    for node in valkey_cluster.nodes:
        assert stat.S_IMODE(node.dir.stat().st_mode) == 0o700
        assert node.process is not None
        argv = " ".join(psutil.Process(node.process.pid).cmdline())
        assert valkey_cluster.password not in argv


def test_a_slot_moves_with_its_keys(tmp_path: Path) -> None:
    """move_slot migrates every key of the slot and every primary agrees on the owner."""
    with LocalCluster(tmp_path) as cluster:
        slot = key_slot(b"lc:{shop}:meta")
        source = cluster.owner_of(slot)
        target = next(n.port for n in cluster.table() if n.primary and n.port != source)
        with cluster.client(source) as client:
            for i in range(120):
                client.set(f"lc:{{shop}}:k{i}", i)
        assert cluster.move_slot(slot, target) == 120
        assert cluster.owner_of(slot) == target
        with cluster.client(target) as client:
            assert client.get("lc:{shop}:k7") == "7"
            assert int(client.execute_command("CLUSTER COUNTKEYSINSLOT", slot)) == 120


def test_a_killed_primary_is_replaced_by_its_replica(tmp_path: Path) -> None:
    """With a replica per primary, SIGKILL of a primary gives its slots a new owner."""
    with LocalCluster(tmp_path, replicas=1, node_timeout_ms=1000) as cluster:
        slot = key_slot(b"lc:{shop}:meta")
        victim = cluster.owner_of(slot)
        with cluster.client(victim) as client:
            client.set("lc:{shop}:meta", "kept")
            client.execute_command("WAIT", 1, 2000)
        process = cluster.node_on(victim).process
        assert process is not None
        process.kill()
        took = cluster.wait_owner(slot, other_than=victim, timeout_s=30)
        owner = cluster.owner_of(slot)
        with cluster.client(owner) as client:
            assert client.get("lc:{shop}:meta") == "kept"
        assert took < 30


def test_node_lines_parse() -> None:
    """CLUSTER NODES lines: flags, failure state, ranges and slots in migration."""
    line = ("07c3 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 7000 "
            "[5461->-e7d1]")  # fmt: skip
    node = ClusterNodeInfo.parse(line)
    assert (node.port, node.primary, node.failed) == (30001, True, False)
    assert node.serves(0) and node.serves(7000) and not node.serves(5461)
    failed = ClusterNodeInfo.parse("a 127.0.0.1:30002@40002 master,fail - 0 0 2 connected")
    assert failed.failed and failed.slots == ()


def test_free_ports_leave_room_for_the_bus() -> None:
    """Each port and its cluster-bus port (+10000) are free."""
    ports = free_ports(6)
    assert len(set(ports)) == 6 and all(20000 <= p < 30000 for p in ports)


def test_livecore_valkey_cluster_command(tmp_path: Path) -> None:
    """`livecore valkey --cluster 3` prints how to point nodes at it (no password in
    the output) and stops every server on SIGTERM."""
    ports = free_ports(3)
    while ports != list(range(ports[0], ports[0] + 3)):  # three in a row
        ports = free_ports(3)
    port = ports[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "signalling", "valkey", "--cluster", "3", "--port", str(port),
         "--data-dir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert "valkey cluster ready: 3 primaries" in lines[0], lines
        export = lines[1].strip()
        assert re.fullmatch(
            r'export LIVECORE_REDIS="redis\+cluster://:\$\(cat .+/password\)@'
            r'127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+"',
            export,
        ), export
        password = (tmp_path / "cluster" / "password").read_text().strip()
        assert password not in "".join(lines)
        client = redis.RedisCluster(host="127.0.0.1", port=port, password=password)
        assert client.set("lc:{r}:x", 1) and client.get("lc:{r}:x") == b"1"
        client.close()
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert len(children) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    deadline = time.monotonic() + 10
    assert all(wait_gone(pid, max(0.1, deadline - time.monotonic())) for pid in children)
