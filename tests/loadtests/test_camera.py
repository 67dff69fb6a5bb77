"""The adaptive lab's camera clip: a looping 720p MJPEG that Chromium can read."""

from __future__ import annotations

from pathlib import Path

import av

from loadtests.netlab.camera import SHIFT, write_clip


def test_clip_is_720p_mjpeg_of_the_asked_length(tmp_path: Path) -> None:
    """0.2 s at 30 fps: six 1280x720 JPEG frames, their sizes summing to the file's."""
    path = tmp_path / "camera.mjpeg"
    size = write_clip(path, seconds=0.2)
    assert size == path.stat().st_size and size > 0
    with av.open(str(path), format="mjpeg") as clip:
        frames = list(clip.decode(video=0))
    assert len(frames) == 6
    assert {(f.width, f.height) for f in frames} == {(1280, 720)}


def test_frames_differ_and_the_loop_closes(tmp_path: Path) -> None:
    """The picture moves every frame; the frame after the last is the first again (the
    background's period is one loop's pan)."""
    path = tmp_path / "camera.mjpeg"
    write_clip(path, seconds=0.1)  # 3 frames: a period of 3 x SHIFT pixels
    with av.open(str(path), format="mjpeg") as clip:
        lumas = [bytes(f.planes[0]) for f in clip.decode(video=0)]
    assert len(set(lumas)) == 3
    width = 1280
    first_row = lumas[0][100 * width : 101 * width]  # below the frame counter's blocks
    period = 3 * SHIFT
    # periodic: the row repeats after one turn (JPEG's error aside: compare coarsely)
    diffs = [abs(a - b) for a, b in zip(first_row, first_row[period:], strict=False)]
    assert sum(diffs) / len(diffs) < 8
