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
    """30 fps then a stalled second: fps_min 0; a 0.5 s freeze in 3 s; two heights."""
    samples = Samples()
    for i in range(9):  # 0..2 s, every 0.25 s
        t = i * 0.25
        frames = int(min(t, 1.0) * 30)
        samples.add({"at": t * 1000, "frames": frames, "height": 360 if t < 1 else 180,
                     "freezes": 0.5 if t >= 1.5 else 0.0})  # fmt: skip
    figures = samples.figures()
    assert figures["fps_min"] == 0.0
    assert figures["freeze_pct"] == 25.0
    assert set(figures["layers"]) == {"180p", "360p"}


@pytest.mark.alone
@pytest.mark.timeout(400)
def test_adaptive_short_run() -> None:
    """The short form: three capped viewers of a three-layer host page; the 0.4 Mbit/s
    viewer is mostly on a smaller layer than the 6 Mbit/s one, and it freezes less than
    with one layer; the cap change goes down and back up."""
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

    def main_height(figures: dict[str, object]) -> int:
        layers = figures["layers"]
        assert isinstance(layers, dict) and layers
        return int(max(layers, key=layers.__getitem__).rstrip("p"))

    assert main_height(simulcast["0.4Mbit"]) < main_height(simulcast["6Mbit"])
    assert simulcast["0.4Mbit"]["freeze_pct"] < single["0.4Mbit"]["freeze_pct"]
    assert simulcast["cap_change"]["switch_down_s"] < 20
    assert simulcast["cap_change"]["switch_up_s"] < 30
