"""`python -m loadtests fanout` in its short form: starts its own cluster, reports exact JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

from loadtests.fanout import SAMPLE_EVERY, viewer_groups
from loadtests.fanoutsend import ROOM, room_names
from loadtests.local import Cluster
from tests.helpers import ROOT

KEYS = {"ok", "store", "rooms", "viewers_connected", "sent", "expected_deliveries",
        "delivered", "lost", "duplicates", "latency_ms", "server_cpu_pct", "server_rss_mb",
        "rss_per_conn_kib", "load_cpu_pct", "server_ns_per_delivery",
        "others_cpu_pct"}  # fmt: skip


def _fanout(*args: str) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "fanout", *args, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True, result
    return result, proc.stderr


def test_fanout_short_run() -> None:
    """60 viewers, 20 comments/s for 2 s: every delivery arrives once, JSON is the last
    line; the tail guard holds (a stalled tick, seconds, would exit 99)."""
    result, stderr = _fanout("--viewers", "60", "--rate", "20", "--duration", "2",
                             "--max-p99-ms", "2000")  # fmt: skip
    assert set(result) == KEYS
    assert result["store"] == "valkey" and result["rooms"] == 1
    assert set(result["latency_ms"]) == {"p50", "p99", "max"}
    assert result["viewers_connected"] == 60 and result["sent"] == 40
    assert result["delivered"] == result["expected_deliveries"] == 2400
    assert result["lost"] == 0 and result["duplicates"] == 0
    assert "fanout:" in stderr  # the human summary


def test_fanout_against_two_workers_beside_one() -> None:
    """--workers 2: the same fan-out against one process, then against `serve --workers 2`;
    both exact, side by side in one result with the p99 ratio."""
    result, _ = _fanout("--viewers", "60", "--rate", "20", "--duration", "2",
                        "--workers", "2")  # fmt: skip
    assert set(result) == KEYS | {"workers", "one_worker", "workers_p99_ratio"}
    assert result["workers"] == 2 and result["workers_p99_ratio"] > 0
    for run in (result, result["one_worker"]):
        assert run["delivered"] == 2400 and run["lost"] == 0, result


def test_fanout_rooms_on_a_cluster() -> None:
    """90 viewers in 3 rooms on a 3-primary Valkey Cluster, 30 comments/s for 2 s: each
    viewer gets every comment of its own room once; the rooms' shards are reported."""
    result, _ = _fanout("--viewers", "90", "--rooms", "3", "--cluster", "3", "--rate", "30",
                        "--duration", "2")  # fmt: skip
    assert set(result) == KEYS | {"rooms_per_shard"}
    assert result["store"] == "cluster:3" and result["rooms"] == 3
    assert len(result["rooms_per_shard"]) == 3 and sum(result["rooms_per_shard"]) == 3
    assert result["viewers_connected"] == 90 and result["sent"] == 60
    # 20 comments into each room, 30 viewers each: 3 × 20 × 30, not 60 × 90
    assert result["delivered"] == result["expected_deliveries"] == 1800
    assert result["lost"] == 0 and result["duplicates"] == 0


def test_viewers_spread_evenly_with_probes_in_every_room() -> None:
    """Viewer i is in room i mod N; each room has its share of probes, in one process."""
    rooms = room_names(3)
    assert room_names(1) == [ROOM] and rooms == ["fanout-0", "fanout-1", "fanout-2"]
    groups = viewer_groups(Cluster(["http://127.0.0.1:1"], b"k" * 32), 3 * SAMPLE_EVERY * 2, rooms)
    (probes, is_probe), rest = groups[0], groups[1:]
    assert is_probe and not any(p for _, p in rest)
    assert Counter(room for _, room, _ in probes) == {room: 2 for room in rooms}
    everyone = probes + [v for group, _ in rest for v in group]
    assert Counter(room for _, room, _ in everyone) == {room: 2 * SAMPLE_EVERY for room in rooms}
    assert sorted(i for i, _, _ in everyone) == list(range(len(everyone)))


def test_rooms_per_shard_is_none_on_one_valkey() -> None:
    """Without a local Valkey Cluster there are no shards to report."""
    assert Cluster(["http://127.0.0.1:1"], b"k" * 32).rooms_per_shard(room_names(3)) is None
