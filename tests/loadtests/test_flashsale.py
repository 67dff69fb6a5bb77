"""`python -m loadtests flashsale` in its short form: its own cluster, sold exactly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

KEYS = {"ok", "store", "buyers", "stock", "taps", "sold", "oversold", "limit_exceeded",
        "ack_latency_ms", "refusals", "load_cpu_pct", "node_us_per_tap", "store_us_per_tap",
        "others_cpu_pct", "steal_cpu_pct", "nodes_gc_in_race", "load_gc_ms_in_race"}  # fmt: skip


@pytest.mark.parametrize(
    ("shards", "store"), [([], "valkey"), (["--cluster", "3"], "cluster:3")]
)  # fmt: skip
def test_flashsale_short_run(shards: list[str], store: str) -> None:
    """300 buyers over two nodes race for 40 units, on one Valkey and on a 3-primary
    cluster: all 40 sold, none oversold, nobody past the limit, acks within the guard."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "flashsale", "--buyers", "300", "--stock", "40",
         "--nodes", "2", "--json", "--max-p99-ms", "2000", *shards],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS == set(result) and result["ok"] is True and result["store"] == store
    assert (result["sold"], result["oversold"], result["limit_exceeded"]) == (40, 0, 0)
    assert result["taps"] >= 300 and set(result["refusals"]) <= {"flash_sold_out", "flash_limit"}
    # the nodes' collections in the race, read from their livecore_gc_pause_seconds
    assert set(result["nodes_gc_in_race"]) <= {"0", "1", "2"}
    assert all(g["n"] >= 1 and g["ms"] >= 0 for g in result["nodes_gc_in_race"].values())
    assert result["steal_cpu_pct"] >= 0
    # the generator's own collections stay out of the race (a pause there holds answers)
    assert result["load_gc_ms_in_race"] == 0
