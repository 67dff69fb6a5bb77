"""The relay's shared frame window and its lag rule, without an event loop."""

from __future__ import annotations

import av

from media.relaystate import RelayLimits, RelayStats, ViewerPosition
from media.relaywindow import FrameWindow, Skip


def window(**limits: int) -> tuple[FrameWindow, RelayStats]:
    stats = RelayStats()
    return FrameWindow(RelayLimits(**limits), stats), stats  # type: ignore[arg-type]


def add(w: FrameWindow, count: int, gop: int, start: int = 0, size: int = 100) -> None:
    """Append ``count`` frames numbered from ``start``, a keyframe every ``gop``."""
    for n in range(start, start + count):
        w.append(av.Packet(bytes(size)), n % gop == 0, float(n))


def seqs(w: FrameWindow, pos: ViewerPosition, count: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(count):
        slot, _skip = w.take(pos)
        out.append(None if slot is None else slot.seq)
    return out


def test_holds_the_gop_and_the_last_frames_only() -> None:
    """The window keeps the cached GOP plus max_lag_frames, whatever the viewers do."""
    w, stats = window(max_lag_frames=4)
    add(w, 25, gop=10)
    assert [s.seq for s in w.gop_slots()] == list(range(20, 25))
    assert w.frames == 5 and w.bytes == 500 and w.head == 24
    assert (stats.frames_in, stats.keyframes_in, stats.bytes_in) == (25, 3, 2500)


def test_a_gop_over_the_cap_is_not_cached() -> None:
    """Past max_gop_frames the GOP is dropped: no instant start, only the lag frames kept."""
    w, stats = window(max_lag_frames=2, max_gop_frames=5)
    add(w, 8, gop=100)
    assert not w.has_keyframe and w.gop_slots() == [] and w.frames == 3
    assert stats.gop_overflows == 1


def test_a_new_viewer_starts_on_the_cached_keyframe() -> None:
    """A position without a frame starts at the GOP's keyframe, then takes frames in order."""
    w, _ = window()
    pos = ViewerPosition()
    assert w.take(pos) == (None, Skip.NONE)  # nothing yet: it waits
    add(w, 13, gop=10)
    assert seqs(w, pos, 4) == [10, 11, 12, None]


def test_a_lagging_viewer_jumps_to_a_newer_cached_keyframe() -> None:
    """Behind by more than max_lag_frames with a newer keyframe cached: it jumps there."""
    w, _ = window(max_lag_frames=3)
    pos = ViewerPosition()
    add(w, 2, gop=5)
    assert seqs(w, pos, 1) == [0]
    add(w, 6, gop=5, start=2)
    slot, skip = w.take(pos)
    assert skip is Skip.TO_CACHED_KEYFRAME and slot is not None and slot.seq == 5


def test_a_lagging_viewer_without_a_newer_keyframe_waits_for_the_next() -> None:
    """Behind with only an older keyframe cached: it waits for one newer than the head."""
    w, _ = window(max_lag_frames=3)
    pos = ViewerPosition()
    add(w, 2, gop=100)
    assert seqs(w, pos, 1) == [0]
    add(w, 6, gop=100, start=2)
    assert w.take(pos) == (None, Skip.TO_NEXT_KEYFRAME)
    assert pos.next_seq is None and pos.min_key_seq == 8
    add(w, 1, gop=100, start=8)
    assert w.take(pos) == (None, Skip.NONE)  # frame 8 is no keyframe
    w.append(av.Packet(bytes(100)), True, 9.0)
    assert seqs(w, pos, 2) == [9, None]
