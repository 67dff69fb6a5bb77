"""Which recorded segments a clip is cut from (pure: no files)."""

from __future__ import annotations

import pytest

from media.clipper import NothingToCut, pick_segments
from media.segments import Segment


def seg(index: int, start: float, duration: float, init: str = "init.mp4",
        independent: bool = True) -> Segment:  # fmt: skip
    return Segment(index, start, duration, f"seg{index:06d}.m4s", 100, init, independent)


def test_a_clip_comes_from_the_init_group_that_covers_most_of_it() -> None:
    """A recording that moved to a better simulcast layer a moment after it started
    (one frame under the first init): the clip is cut from the second group, not from
    the one frame (one init segment describes a clip's frames)."""
    segments = [seg(0, 0.0, 0.04), seg(1, 0.04, 2.0, "init-1.mp4"),
                seg(2, 2.04, 2.0, "init-1.mp4"), seg(3, 4.04, 2.0, "init-1.mp4")]  # fmt: skip
    assert [s.index for s in pick_segments(segments, 0.0, 5.0)] == [1, 2, 3]
    assert [s.index for s in pick_segments(segments, 0.0, 0.03)] == [0]


def test_a_clip_starts_on_the_keyframe_segment_before_a_part_cut_one() -> None:
    """A segment that starts without a keyframe (a long GOP cut on parts) brings the
    keyframe segment before it of the same init."""
    segments = [seg(0, 0.0, 3.0), seg(1, 3.0, 3.0, independent=False), seg(2, 6.0, 3.0)]
    assert [s.index for s in pick_segments(segments, 4.0, 8.0)] == [0, 1, 2]
    with pytest.raises(NothingToCut):
        pick_segments(segments, 20.0, 30.0)
