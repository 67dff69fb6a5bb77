"""Fault: Valkey SIGKILLed and restarted while two nodes take comments, votes, joins,
run as ``python -m loadtests faults --only store_kill`` (the benchmark's short form)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT


def test_valkey_killed_mid_stream_loses_nothing() -> None:
    """In flight: 10 viewers on two nodes voting, joining and commenting. Valkey is
    SIGKILLed and restarted: refusals are store_unavailable, /healthz says 503
    meanwhile, and every acknowledged action is there once afterwards; the run's
    last line says ok."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "faults", "--only", "store_kill", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["ok"] is True and last["scenarios"] == 1, last
    result = last["per_scenario"]["store_kill"]
    assert result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["silent"] == 0, result
    assert result["healthz_503_during_outage"], result
    assert result["refused"] > 0, "the outage was not felt: nothing was in flight"
    assert result["crashes"] == 0
