"""`python -m loadtests groupbuy` in its short form: its own cluster, exact counts."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

KEYS = {"joins_sent", "joins_per_s", "ack_latency_ms", "exact", "formed_events",
        "formed_expected", "duplicate_formed"}  # fmt: skip


def test_groupbuy_short_run() -> None:
    """120 neighbours in 4 registered compounds for 2 s: exact, each formation once."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "groupbuy", "--users", "120", "--communities", "4",
         "--nodes", "1", "--duration", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["exact"] is True and result["duplicate_formed"] == 0
    assert result["joins_sent"] > 0 and result["formed_events"] == result["formed_expected"]
