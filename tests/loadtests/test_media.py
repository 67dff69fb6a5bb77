"""`python -m loadtests media` in its short form (`--compare`: a real node per forwarder,
WHIP in, 12 lean viewers out, all from one address); and the same benchmark refusing to
give figures for a run that is not valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, TEST_SECRET, Node, free_port

KEYS = {"ok", "viewers", "server_cpu_pct", "packets_out_per_s", "server_us_per_packet",
        "viewers_per_core_est", "fps", "ttff_ms", "added_latency_ms",
        "codec_ops_on_forward_path", "load_cpu_pct"}  # fmt: skip

# Runs the benchmark's main() directly, so it does not depend on the name being
# registered in loadtests/__main__.py.
RUN = "import sys; from loadtests.media import main; sys.exit(main(sys.argv[1:]))"
SHORT = ["--duration", "3", "--clip-s", "2", "--resolution", "320x240", "--bitrate", "300k"]


def media(*args: str, timeout: float = 90) -> tuple[int, dict[str, Any], str]:
    """Exit code, the last stdout line (JSON) and stderr of one media run."""
    env = {**os.environ, "LIVECORE_SECRET": TEST_SECRET}
    proc = subprocess.run([sys.executable, "-c", RUN, *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.timeout(180)  # two nodes in turn; on a busy machine near a minute
def test_media_compare_short_run() -> None:
    """`media --compare` in short: 12 viewers from one address per forwarder with the
    node's shipped limits (more than the old per-address burst of 10): all connect,
    frames flow, nothing is transcoded, ok, both sides and their ratio."""
    code, result, stderr = media(
        "--compare", "--viewers", "12", "--probes", "1", *SHORT, timeout=170
    )
    assert code == 0, stderr[-3000:]
    assert set(result) == {"ok", "lean", "aiortc", "ratio"} and result["ok"] is True
    assert set(result["ratio"]) == {"viewers_per_core", "us_per_packet"}
    for side in (result["lean"], result["aiortc"]):
        assert set(side) == KEYS - {"ok"}
        assert set(side["fps"]) == {"min", "median"}
        assert set(side["ttff_ms"]) == set(side["added_latency_ms"]) == {"p50", "p95"}
        assert side["viewers"] == 12 and side["codec_ops_on_forward_path"] == 0
        assert side["fps"]["min"] > 0 and side["packets_out_per_s"] > 0
        assert side["ttff_ms"]["p50"] is not None and side["added_latency_ms"]["p50"] > 0
    assert "media --compare:" in stderr and "media: 12 viewers" in stderr  # human summaries


def test_an_invalid_run_says_so_and_gives_no_figures(tmp_path: Path, redis_url: str) -> None:
    """A node whose address limit refuses viewers, then a target nobody listens on: each
    run ends {"ok": false, "reason": ...} with no figure, exit code 1."""
    node = Node(tmp_path / "n", redis_url=redis_url,
                extra_args=["--address-rate", "0.1", "--address-burst", "4"]).start()  # fmt: skip
    try:
        code, result, stderr = media("--target", node.url, "--viewers", "6", "--probes", "0",
                                     *SHORT)  # fmt: skip
    finally:
        node.stop()
    assert code == 1 and set(result) == {"ok", "reason"} and result["ok"] is False, stderr
    assert "failed to connect" in result["reason"] and "rate_limited" in result["reason"]
    code, result, _ = media("--target", f"http://127.0.0.1:{free_port()}", "--viewers", "2",
                            "--probes", "0", *SHORT)  # fmt: skip
    assert code == 1 and set(result) == {"ok", "reason"} and result["ok"] is False
    assert "ConnectError" in result["reason"], result


def test_compare_prints_both_sides_and_their_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    """The --compare driver: both results and their ratio under ok; an invalid side makes
    the whole line {"ok": false, "reason"} with no figures."""
    from loadtests.mediacompare import compare

    runs = {
        "lean": {"server_us_per_packet": 5.0, "viewers_per_core_est": 1000, "load_cpu_pct": 60.0},
        "aiortc": {"server_us_per_packet": 20.0, "viewers_per_core_est": 250,
                   "load_cpu_pct": 40.0},
    }  # fmt: skip
    assert compare(lambda forwarder: (runs[forwarder], [])) == 0
    out, _ = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] is True and result["ratio"] == {
        "viewers_per_core": 4.0,
        "us_per_packet": 4.0,
    }
    assert result["lean"]["load_cpu_pct"] == 60.0
    assert compare(lambda forwarder: (runs[forwarder], [] if forwarder == "lean" else ["x"])) == 1
    assert json.loads(capsys.readouterr()[0].strip().splitlines()[-1]) == {
        "ok": False,
        "reason": "aiortc: x",
    }

    def crash(forwarder: str) -> Any:
        raise ConnectionError("nobody there")

    assert compare(crash) == 1
    out, err = capsys.readouterr()
    last = json.loads(out.strip().splitlines()[-1])
    assert last == {"ok": False, "reason": "lean: the run crashed: ConnectionError: nobody there"}
    assert "aiortc" not in out and "--forwarder aiortc" not in err  # never started
