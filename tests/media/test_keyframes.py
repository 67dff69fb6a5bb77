"""Keyframe requests: at most one per interval, none lost, none after a keyframe."""

from __future__ import annotations

from livecore.clock import ManualClock
from media.keyframes import KeyframeRequester


def make() -> tuple[KeyframeRequester, list[float], ManualClock]:
    clock = ManualClock()
    sent: list[float] = []
    return KeyframeRequester(lambda: sent.append(clock.monotonic()), clock, 1.0), sent, clock


def test_one_request_per_interval() -> None:
    """A burst of requests sends one; the rest wait for the interval."""
    requester, sent, _ = make()
    assert requester.request()
    assert not any(requester.request() for _ in range(10))
    assert sent == [0.0]


def test_remembered_request_goes_out_when_the_interval_ends() -> None:
    """A request inside the interval is sent by the first poll after it."""
    requester, sent, clock = make()
    requester.request()
    clock.advance(0.3)
    requester.request()
    requester.poll()
    assert len(sent) == 1
    clock.advance(0.7)
    requester.poll()
    assert sent == [0.0, 1.0]
    requester.poll()
    assert len(sent) == 2


def test_keyframe_cancels_a_remembered_request() -> None:
    """If a keyframe arrives meanwhile, the remembered request is dropped."""
    requester, sent, clock = make()
    requester.request()
    requester.request()
    requester.keyframe_arrived()
    clock.advance(5)
    requester.poll()
    assert sent == [0.0]


def test_without_a_sender_nothing_is_sent() -> None:
    """Audio relays have no upstream request path."""
    requester = KeyframeRequester(None, ManualClock(), 1.0)
    assert not requester.request()
    assert requester.sent == 0
