"""The plain data of a relay: its bounds, its counters, one viewer's position."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RelayLimits:
    """Bounds of one relay. Defaults suit 30 fps video and 20 ms Opus frames."""

    max_lag_frames: int = 8
    """Frames a viewer may fall behind (beyond its start backlog) before it skips."""
    max_gop_frames: int = 150
    """Longest GOP kept for instant starts (5 s at 30 fps); a longer one is not cached.

    A joining viewer gets the cached GOP as one unpaced burst, so this also
    bounds that burst."""
    max_gop_bytes: int = 4_000_000
    """Largest GOP kept for instant starts, in encoded bytes."""
    keyframe_request_interval: float = 1.0
    """Minimum seconds between keyframe requests sent upstream."""
    fair_burst: int = 8
    """Frames a viewer takes back to back (catching up) before yielding to the loop."""


@dataclass(slots=True)
class RelayStats:
    """Counters of one relay (read by tests and metrics)."""

    frames_in: int = 0
    keyframes_in: int = 0
    bytes_in: int = 0
    pts_rebases: int = 0
    gop_overflows: int = 0
    packetised: int = 0
    frames_out: int = 0
    viewer_skips: int = 0
    keyframe_requests: int = 0
    keyframe_requests_sent: int = 0
    decoded_frames_refused: int = 0
    request_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ViewerPosition:
    """Where one viewer is in the relay's window (moved only by ``FrameWindow.take``)."""

    next_seq: int | None = None
    """The frame it takes next; None while it waits for a keyframe."""
    min_key_seq: int = 0
    """While waiting: the oldest keyframe it may start on."""
    start_head: int = -1
    """The relay's head when it (re)started: the backlog it may work through."""
