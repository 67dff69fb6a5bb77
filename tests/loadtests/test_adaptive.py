"""`python -m loadtests adaptive`: its figures from samples, and its short run in the lab."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loadtests.netlab import unavailable
from loadtests.netlab.adaptive import Samples
from tests.browser import chromium_path
from tests.helpers import ROOT, missing

RUN = "import sys; from loadtests.netlab.adaptive import main; sys.exit(main(sys.argv[1:]))"


def test_figures_from_samples() -> None:
    """30 fps then a stalled second: fps_min 0 (from 1 s in); a 0.5 s freeze in 3 s; two
    heights."""
    samples = Samples()
    for i in range(9):  # 0..2 s, every 0.25 s
        t = i * 0.25
        frames = int(min(t, 1.0) * 30)
        samples.add({"at": t * 1000, "frames": frames, "height": 360 if t < 1 else 180,
                     "freezes": 0.5 if t >= 1.5 else 0.0})  # fmt: skip
    figures = samples.figures()
    assert figures["fps_min"] == 0.0 and figures["fps_min_at_s"] == 1.0
    assert figures["freeze_pct"] == 25.0
    assert set(figures["layers"]) == {"180p", "360p"}


@pytest.mark.alone
@pytest.mark.timeout(400)
def test_adaptive_short_run() -> None:
    """The short form: three capped viewers of a three-layer host page and a viewer page
    on LL-HLS, a cap change for each kind, then one layer: the run is valid and every
    figure is there and sane (each viewer decoded, on known layers; the weakest viewer
    never mostly on the top layer; the HLS page played, with its distance to live). The
    issue's targets (freezes, fps, switch times) are the full run's, judged on a quiet
    machine (docs/benchmarks.md): a short run on a loaded one cannot hold them, since
    the browser's bit rate ramps up over tens of seconds."""
    why = unavailable()
    if why is not None:
        missing(why)
    chromium_path()
    proc = subprocess.run([sys.executable, "-c", RUN, "--short", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=380)  # fmt: skip
    print(proc.stderr[-4000:])
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and last["ok"] is True, proc.stderr[-4000:]
    simulcast, single = last["simulcast"], last["single_layer"]
    for run in (simulcast, single):
        for name in ("0.4Mbit", "1.2Mbit", "6Mbit"):
            figures = run[name]
            assert figures["fps_mean"] > 0 and 0 <= figures["freeze_pct"] <= 100, (name, figures)
            layers = figures["layers"]  # a browser under load encodes below 720p
            assert layers and all(k.endswith("p") and k[:-1].isdigit() for k in layers)
    weak = simulcast["0.4Mbit"]["layers"]
    assert int(max(weak, key=weak.__getitem__)[:-1]) < 720, weak
    change = simulcast["cap_change"]
    assert change["switch_down_s"] >= 0 and change["switch_up_s"] >= 0, change
    for run in (simulcast, single):  # what the host's layers sent: rid -> rate, fps, height
        assert run["host_layers_kbit"], run
        for layer in run["host_layers_kbit"].values():
            assert layer["kbit"] >= 0 and layer["fps"] >= 0 and layer["height"] >= 0, layer
    # The HLS viewer page played LL-HLS (a run where it never played is invalid): how far
    # behind, the renditions before / during / after its cap, the seconds to move.
    behind = last["hls_behind_live_s"]
    assert 0 < behind["p50"] <= behind["max"] and behind["samples"] > 0, behind
    assert isinstance(last["hls_behind_webrtc_s"]["p50"], float)
    assert last["webrtc_behind_node_s"]["p50"] >= 0
    heights = {f"{r['height']}p" for r in last["hls_renditions"]}
    assert len(heights) >= 1, last["hls_renditions"]
    for phase in ("before", "capped", "after"):
        assert set(last["hls_levels"][phase]) <= heights, last["hls_levels"]
    assert last["hls_levels"]["before"], last["hls_levels"]
    assert isinstance(last["hls_errors"], dict), last["hls_errors"]
    for key in ("hls_switch_down_s", "hls_switch_up_s"):
        assert last[key] is None or last[key] >= 0, (key, last[key])
