"""`python -m loadtests highlights`: a short run against its own node, and the scoring rules.

The short run checks the result's shape and that clips are produced, not the
quality targets (a 75-second trace has one or two labelled moments; the
figures are in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from livecore.audience.trace import Label, write_trace
from loadtests import highlightshapes as shapes
from loadtests.highlights import write_communities
from loadtests.highlightscore import Window, offline, pooled, score, score_by_kind
from loadtests.synth import SynthConfig, generate
from tests.helpers import ROOT

KEYS = {"ok", "labelled", "detected", "precision", "recall", "clip_ready_delay_s",
        "clip_cut_speed_x", "encode_ops", "recording_cpu_pct", "by_kind", "bursts", "offline",
        "targets"}  # fmt: skip


# alone: the trace replays 6× faster than it happened, on the wall clock; a busy machine
# stretched the pipeline past the run's end and the product segment's clip was not cut.
@pytest.mark.alone
def test_short_benchmark_produces_clips(tmp_path: Path) -> None:
    """A 75 s trace at 6×, 320x240, the audience over 3 nodes and the host's console on
    another node than its camera: JSON last line with every key, clips cut, no encodes."""
    trace = tmp_path / "short.lctrace"
    write_trace(trace, generate(SynthConfig(duration_s=75, peak_viewers=60, seed=3)))
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "highlights", "--trace", str(trace), "--speed", "6",
         "--resolution", "320x240", "--bitrate", "300k", "--nodes", "3", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result) and result["ok"] is True and result["nodes"] == 3
    assert result["clips"] >= 1 and result["detected"] == result["clips"]
    assert result["by_kind"].get("product", 0) >= 1
    assert result["encode_ops"] == 0 and result["clips_failed"] == 0
    assert set(result["clip_ready_delay_s"]) >= {"p50", "p95"}
    assert result["clip_ready_delay_s"]["p95"] is not None
    assert result["clip_cut_speed_x"] > 0 and 0 < result["recording_cpu_pct"] < 100
    assert not result["replay"]["errors"].get("unknown_community")


def test_help_speaks_to_a_load_tester() -> None:
    """--help says what is measured and how the time is compressed."""
    done = subprocess.run([sys.executable, "-m", "loadtests", "highlights", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0
    for word in ("precision", "clip_ready_delay_s", "--speed", "--highlight-time-scale",
                 "--offline", "--video"):  # fmt: skip
        assert word in done.stdout


def test_a_detection_counts_when_it_overlaps_a_label() -> None:
    """Overlap in either direction counts; touching end to start does not."""
    labels = [Label(10, 20, "product_pin"), Label(50, 60, "price_drop")]
    windows = [Window(15, 30, "burst"), Window(20, 25, "burst"), Window(55, 100, "product")]
    s = score(windows, labels)
    assert (s["true"], s["found"]) == (2, 2)
    assert s["precision"] == 0.667 and s["recall"] == 1.0
    assert score([], labels)["precision"] is None


def test_offline_detector_on_a_generated_session() -> None:
    """The pure detector finds the pins' segments and some bursts; pooled counts add up."""
    trace = generate(SynthConfig(duration_s=240, seed=11))
    found = offline(trace)
    by = score_by_kind(found, trace.labels)
    assert by["by_kind"].get("product", 0) >= 2
    assert by["detected"] == len(found) and by["bursts"]["detected"] <= by["detected"]
    both = pooled([by, by])
    assert both["labelled"] == 2 * by["labelled"] and both["precision"] == by["precision"]


def test_held_out_shapes_offline() -> None:
    """On shapes and seeds it was not tuned on, the detector finds the moments (people per
    second); one viewer's 500 taps a second (the ``taps`` decoy) is never a clip."""
    traces = [shapes.generate(shapes.ShapesConfig(seed=s)) for s in (100, 101, 102)]
    rows = []
    for trace in traces:
        found = offline(trace)
        rows.append(score_by_kind(found, trace.labels))
        assert trace.meta["shapes"] == list(shapes.HELD_OUT)
    total = pooled(rows)
    assert total["precision"] >= 0.8 and total["recall"] >= 0.8, total


def test_one_viewers_taps_are_one_person() -> None:
    """The taps decoy alone (one viewer, 50 taps × 10 messages a second for 15 s) in a
    quiet room: no highlight."""
    trace = shapes.generate(shapes.ShapesConfig(seed=7, shapes=("taps",), duration_s=200))
    assert trace.labels == [] and offline(trace) == []


def test_communities_file_is_loadable(tmp_path: Path) -> None:
    """The trace's compounds become a --communities file the node accepts."""
    from livecore.communities import load_file

    trace = generate(SynthConfig(duration_s=60, seed=1))
    path = write_communities(tmp_path / "c.json", trace)
    assert [c.id for c in load_file(path)] == trace.communities
