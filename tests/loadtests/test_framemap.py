"""Mapping a viewer's frames back to the publisher's by the code in the pts spacing."""

from __future__ import annotations

from loadtests.clip import frame_pts
from loadtests.framemap import Mapped, map_frames

STEP = 3000  # 30 fps at 90 kHz


def test_frames_map_back_with_an_unknown_origin() -> None:
    """A viewer's random RTP origin is recovered; each frame's latency is arrival - send."""
    sent_at = [10.0 + n / 30 for n in range(600)]
    origin = 0xFFFF_F000  # wraps past 2^32 within the run
    received = range(100, 400)
    ts = [(frame_pts(n, STEP) + origin) & 0xFFFFFFFF for n in received]
    at = [sent_at[n] + 0.020 for n in received]
    out = Mapped()
    map_frames(ts, at, sent_at, STEP, out)
    assert out.mismatches == 0 and out.unmapped_viewers == 0
    assert len(out.latencies_ms) == len(received)
    assert all(abs(ms - 20.0) < 1e-6 for ms in out.latencies_ms)


def test_a_frame_that_was_never_sent_is_a_mismatch() -> None:
    """A timestamp that fits no sent frame is counted, not silently mapped."""
    sent_at = [n / 30 for n in range(100)]
    ts = [frame_pts(n, STEP) for n in range(10, 20)] + [frame_pts(15, STEP) + 7]
    at = [sent_at[n] + 0.01 for n in range(10, 20)] + [sent_at[19] + 0.01]
    out = Mapped()
    map_frames(ts, at, sent_at, STEP, out)
    assert out.mismatches == 1
