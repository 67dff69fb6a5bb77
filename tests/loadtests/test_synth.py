"""The synthetic session generator: deterministic, well formed, labelled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livecore.audience.trace import HOST, Kind, read_trace
from loadtests.replay import SAMPLE_TRACE
from loadtests.synth import SynthConfig, generate

SMALL = SynthConfig(duration_s=240, peak_viewers=60, seed=7)


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    """A seed fixes every event and label; another seed changes them."""
    a, b = generate(SMALL), generate(SMALL)
    assert a.events == b.events and a.labels == b.labels
    c = generate(SynthConfig(duration_s=240, peak_viewers=60, seed=8))
    assert c.events != a.events


def test_clients_act_only_while_joined() -> None:
    """No viewer comments, likes or leaves before joining or after leaving."""
    trace = generate(SMALL)
    live: set[int] = set()
    for event in trace.events:
        if event.client == HOST:
            assert event.kind >= Kind.PRODUCT_PIN
            continue
        if event.kind == Kind.JOIN:
            live.add(event.client)
            continue
        assert event.client in live, event
        if event.kind == Kind.LEAVE:
            live.discard(event.client)


def test_labels_are_intervals_with_reasons_and_varying_lag() -> None:
    """Each highlight is [start_s, end_s] after its moment, with a reason and its own lag."""
    trace = generate(SynthConfig(seed=3))
    assert len(trace.labels) >= 5
    assert {label.reason for label in trace.labels} >= {"product_pin", "host_moment"}
    for label in trace.labels:
        assert 0 <= label.start_s < label.end_s <= trace.duration_s + 30
        assert 1 <= label.lag_s <= 8
    assert len({label.lag_s for label in trace.labels}) == len(trace.labels)


def test_comments_burst_after_pins() -> None:
    """Comment rate inside labelled reactions is well above the rate outside them."""
    trace = generate(SynthConfig(seed=3))
    inside = outside = 0
    windows = [(lb.start_s + lb.lag_s, lb.end_s) for lb in trace.labels]
    for event in trace.events:
        if event.kind == Kind.COMMENT:
            t = event.t_ms / 1000
            if any(a <= t <= b for a, b in windows):
                inside += 1
            else:
                outside += 1
    span_in = sum(b - a for a, b in windows)
    assert inside / span_in > 2 * outside / (trace.duration_s - span_in)


def test_the_shipped_sample_is_small_and_readable() -> None:
    """The sample trace in the package is a few hundred KB at most and labelled."""
    assert SAMPLE_TRACE.stat().st_size < 300_000
    trace = read_trace(SAMPLE_TRACE)
    assert trace.duration_s == 600 and trace.labels and trace.clients > 100


def test_the_command_writes_a_trace_and_says_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m loadtests synth`: the trace is written; the last line says ok and what."""
    from loadtests.synth import main

    out = tmp_path / "s.lctrace"
    assert main(["--out", str(out), "--minutes", "1", "--viewers", "20", "--seed", "3"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["ok"] is True and last["events"] == len(read_trace(out).events) > 0
