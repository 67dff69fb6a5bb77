"""The one way a benchmark ends (loadtests.verdict): figures only for a valid run."""

from __future__ import annotations

import json

import pytest

from loadtests import verdict


def last_line(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    out = capsys.readouterr().out
    parsed: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return parsed


def test_a_valid_run_prints_its_figures_under_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """No problem: ok true with the figures, exit 0 (or the scenario's own code)."""
    assert verdict.finish("x", {"viewers": 3}, [None]) == 0
    assert last_line(capsys) == {"ok": True, "viewers": 3}
    assert verdict.finish("x", {"viewers": 3}, [], code_if_ok=99) == 99
    capsys.readouterr()


def test_a_missed_bound_is_a_valid_run_that_exits_99(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A valid run above a --max-p99-ms bound: ok true, slo_missed names it, exit 99;
    within it (or without a bound) nothing is missed."""
    assert verdict.over("ack p99", 60.5, 50) == ["ack p99 60.5 ms > 50 ms"]
    assert verdict.over("ack p99", 50, 50) == [] and verdict.over("ack p99", 900, None) == []

    def slow() -> verdict.Outcome:
        return {"p99": 60.5, "slo_missed": verdict.over("ack p99", 60.5, 50)}, []

    assert verdict.run("x", slow) == verdict.EXIT_MISSED == 99
    assert last_line(capsys) == {"ok": True, "p99": 60.5, "slo_missed": ["ack p99 60.5 ms > 50 ms"]}
    assert verdict.run("x", lambda: ({"p99": 1.0}, [])) == 0
    capsys.readouterr()


def test_an_invalid_run_prints_only_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """A problem: ok false, the reasons joined, no figure on stdout (stderr keeps them)."""
    assert verdict.finish("x", {"viewers": 3}, ["a", None, "b"]) == verdict.EXIT_INVALID
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1]) == {"ok": False, "reason": "a; b"}
    assert "viewers" not in captured.out and '"viewers": 3' in captured.err
    assert verdict.finish("x", None) == verdict.EXIT_INVALID
    assert last_line(capsys) == {"ok": False, "reason": "the run gave no result"}


def test_a_crash_is_an_invalid_run(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception in the run (a crash, Invalid) ends it ok false with its name."""

    def crashes() -> verdict.Outcome:
        raise ConnectionRefusedError("nobody listens")

    def stops() -> verdict.Outcome:
        raise verdict.Invalid("3 of 5 viewers failed to connect")

    assert verdict.run("x", crashes) == verdict.EXIT_INVALID
    reason = last_line(capsys)["reason"]
    assert reason == "the run crashed: ConnectionRefusedError: nobody listens"
    assert verdict.run("x", stops) == verdict.EXIT_INVALID
    assert last_line(capsys)["reason"] == "3 of 5 viewers failed to connect"
    assert verdict.run("x", lambda: ({"n": 1}, [])) == 0
    assert last_line(capsys) == {"ok": True, "n": 1}


def test_saturation_and_set_up_refusals_are_named() -> None:
    """A load core past 90% and refusals by limits or tokens are problems; others not."""
    assert verdict.saturated(None) is None and verdict.saturated(90.0) is None
    assert "saturated (97%" in (verdict.saturated(97.0, "the latency") or "")
    assert verdict.refused({"group_formed": 4, "rate_limited": 0}) is None
    found = verdict.refused({"rate_limited": 2, "token_expired": 1, "muted": 5}, "joins")
    assert found == "3 joins were refused by the set-up: {'rate_limited': 2, 'token_expired': 1}"
