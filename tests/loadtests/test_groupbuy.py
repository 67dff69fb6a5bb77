"""`python -m loadtests groupbuy` in its short form: its own cluster, exact counts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

KEYS = {"ok", "store", "joins_sent", "joins_per_s", "ack_latency_ms", "exact", "formed_events",
        "formed_expected", "duplicate_formed", "load_cpu_pct", "node_us_per_join",
        "store_us_per_join", "others_cpu_pct"}  # fmt: skip


@pytest.mark.parametrize(
    ("nodes", "shards", "store"), [(1, [], "valkey"), (2, ["--cluster", "3"], "cluster:3")]
)
def test_groupbuy_short_run(nodes: int, shards: list[str], store: str) -> None:
    """120 neighbours in 4 registered compounds for 2 s, on one Valkey and on a
    3-primary cluster under two nodes: exact, each formation once, and the ack tail
    guard holds (a stalled join path, seconds, would exit 99 with slo_missed)."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "groupbuy", "--users", "120", "--communities", "4",
         "--nodes", str(nodes), "--duration", "2", "--json", "--max-p99-ms", "2000", *shards],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS == set(result) and result["ok"] is True and result["store"] == store
    assert set(result["ack_latency_ms"]) == {"p50", "p99"}
    assert result["exact"] is True and result["duplicate_formed"] == 0
    assert result["joins_sent"] > 0 and result["formed_events"] == result["formed_expected"]
