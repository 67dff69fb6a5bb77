"""`python -m loadtests recording` in its short form: a small stream recorded and cut."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT


def test_recording_short_run() -> None:
    """2 s of 320x240 recorded at pace, a 4 s clip cut: figures under ok, no transcoding."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "recording", "--seconds", "2", "--cut-seconds", "4",
         "--size", "320x240", "--bitrate", "300000"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["encode_ops"] == 0
    assert result["clip_cut_speed_x"] > 0 and result["replay_speed_x"] > 0
    assert result["recorder"]["transcode_cpu_pct"] == result["recorder"]["composite_cpu_pct"] == 0


def test_recording_a_vp8_publisher_short_run() -> None:
    """The same with a VP8 publisher and a KOC co-streaming: recorded through one
    composite (the VP8 host decoded, the KOC drawn in from the host's second key frame,
    2 s in), its CPU reported."""
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests", "recording", "--seconds", "4", "--cut-seconds", "4",
         "--size", "320x240", "--bitrate", "300000", "--codec", "vp8", "--costream", "160x96"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"] is True and result["codec"] == "vp8" and result["costream"] == "160x96"
    recorder = result["recorder"]
    assert recorder["frames"] > 0 and recorder["transcode_cpu_pct"] > 0
    assert recorder["composite_cpu_pct"] > 0
