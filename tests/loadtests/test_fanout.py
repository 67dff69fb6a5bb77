"""`python -m loadtests fanout` in its short form: starts its own cluster, reports exact JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

KEYS = {"viewers_connected", "sent", "expected_deliveries", "delivered", "lost", "duplicates",
        "latency_ms", "server_cpu_pct", "server_rss_mb", "rss_per_conn_kib"}  # fmt: skip


def test_fanout_short_run() -> None:
    """60 viewers, 20 comments/s for 2 s: every delivery arrives once, JSON is the last line."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "fanout", "--viewers", "60", "--rate", "20",
         "--duration", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == KEYS
    assert set(result["latency_ms"]) == {"p50", "p99", "max"}
    assert result["viewers_connected"] == 60 and result["sent"] == 40
    assert result["delivered"] == result["expected_deliveries"] == 2400
    assert result["lost"] == 0 and result["duplicates"] == 0
    assert "fanout:" in proc.stderr  # the human summary
