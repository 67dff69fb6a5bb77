"""SLO thresholds: parsing and checking (k6 style)."""

from __future__ import annotations

import argparse

import pytest

from loadtests import slo

RESULT = {"latency_ms": {"p50": 20.0, "p95": 80.0, "p99": 300.0, "max": 410.0}, "lost": 0,
          "errors": 2, "clients_failed": 0, "event_mix_error_pct": {"comment": 0.5}}  # fmt: skip


def test_parse_and_check() -> None:
    """Each missed limit is named with its value; met limits are silent."""
    slos = slo.parse("p99_ms=250, lost=0,errors=0")
    assert slos == {"p99_ms": 250.0, "lost": 0.0, "errors": 0.0}
    assert slo.check(RESULT, slos) == ["p99_ms = 300.0 (limit 250)", "errors = 2 (limit 0)"]
    assert slo.check(RESULT, {"mix_pct": 1}) == []


def test_unknown_names_are_refused() -> None:
    """A typo is an error listing the known names, not a silently ignored limit."""
    with pytest.raises(argparse.ArgumentTypeError, match="p99_ms"):
        slo.parse("p99=250")
    with pytest.raises(argparse.ArgumentTypeError):
        slo.parse("lost=none")
