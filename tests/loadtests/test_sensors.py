"""`python -m loadtests sensors` in its short form: its own node, devices within their limits."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT


def test_sensors_short_run() -> None:
    """2 batches × 2 devices posting 50 readings for 2 s: nothing refused, ok, JSON last."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "sensors", "--batches", "2", "--devices", "2",
         "--per-post", "50", "--duration", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["refused"] == 0
    assert result["readings"] > 0 and result["readings_per_s"] > 0
    assert result["valkey_bytes_per_batch"] and result["p99_ingest_ms"] > 0
