"""Keyframe requests to a publisher, rate-limited (mediasoup asks at most ~1/s).

Every keyframe costs the publisher's whole audience bitrate for a moment, so
requests (viewer joins, viewer PLIs, viewers that fell behind) are merged:
at most one goes upstream per ``interval``; one asked for inside the interval
is remembered and sent when the interval ends, unless a keyframe came first.
"""

from __future__ import annotations

from collections.abc import Callable

from livecore.clock import Clock


class KeyframeRequester:
    """Rate-limits keyframe requests to one per ``interval`` seconds.

    ``request()`` sends now if allowed, else remembers; ``poll()`` (called for
    every frame) sends a remembered request once the interval has passed;
    ``keyframe_arrived()`` forgets it.
    """

    def __init__(self, send: Callable[[], None] | None, clock: Clock, interval: float) -> None:
        self._send = send
        self._clock = clock
        self._interval = interval
        self._last: float | None = None
        self._pending = False
        self.sent = 0

    def request(self) -> bool:
        """Ask for a keyframe; True if a request went out now."""
        if self._send is None:
            return False
        now = self._clock.monotonic()
        if self._last is not None and now - self._last < self._interval:
            self._pending = True
            return False
        self._last, self._pending = now, False
        self.sent += 1
        self._send()
        return True

    def poll(self) -> None:
        if self._pending:
            self.request()

    def keyframe_arrived(self) -> None:
        self._pending = False
