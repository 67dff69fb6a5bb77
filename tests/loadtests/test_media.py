"""`python -m loadtests media` in its short form: a real node, WHIP in, 5 lean viewers out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT

KEYS = {"viewers", "server_cpu_pct", "packets_out_per_s", "server_us_per_packet",
        "viewers_per_core_est", "fps", "ttff_ms", "added_latency_ms",
        "codec_ops_on_forward_path", "load_cpu_pct", "load_saturated"}  # fmt: skip

# Runs the benchmark's main() directly, so it does not depend on the name being
# registered in loadtests/__main__.py.
RUN = "import sys; from loadtests.media import main; sys.exit(main(sys.argv[1:]))"


def test_media_short_run() -> None:
    """5 viewers for 4 s of 720p30: all connect, frames flow, nothing is transcoded."""
    proc = subprocess.run(
        [sys.executable, "-c", RUN, "--viewers", "5", "--duration", "4", "--clip-s", "2",
         "--probes", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == KEYS
    assert set(result["fps"]) == {"min", "median"}
    assert set(result["ttff_ms"]) == set(result["added_latency_ms"]) == {"p50", "p95"}
    assert result["viewers"] == 5
    assert result["codec_ops_on_forward_path"] == 0
    assert result["fps"]["min"] > 0 and result["packets_out_per_s"] > 0
    assert result["ttff_ms"]["p50"] is not None and result["added_latency_ms"]["p50"] > 0
    assert "media:" in proc.stderr  # the human summary


def test_compare_prints_both_sides_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    """The --compare driver: both results, flags kept, ratio of the two, last line JSON."""
    from loadtests.mediacompare import compare

    runs = {
        "lean": {"server_us_per_packet": 5.0, "viewers_per_core_est": 1000, "load_saturated": True,
                 "load_cpu_pct": 97.0},
        "aiortc": {"server_us_per_packet": 20.0, "viewers_per_core_est": 250,
                   "load_saturated": False, "load_cpu_pct": 40.0},
    }  # fmt: skip
    assert compare(lambda forwarder: (runs[forwarder], [])) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ratio"] == {"viewers_per_core": 4.0, "us_per_packet": 4.0}
    assert result["lean"]["load_saturated"] and result["aiortc"]["problems"] == []
    assert "load generator saturated" in err
    assert compare(lambda forwarder: ({}, ["no viewers"])) == 1
    assert json.loads(capsys.readouterr()[0].strip().splitlines()[-1])["ratio"] == {
        "viewers_per_core": None,
        "us_per_packet": None,
    }
