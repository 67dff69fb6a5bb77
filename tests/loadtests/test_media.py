"""`python -m loadtests media` in its short form: a real node, WHIP in, 5 lean viewers out."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

KEYS = {"viewers", "server_cpu_pct", "packets_out_per_s", "server_us_per_packet",
        "viewers_per_core_est", "fps", "ttff_ms", "added_latency_ms",
        "codec_ops_on_forward_path"}  # fmt: skip

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
