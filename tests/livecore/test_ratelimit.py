"""Token buckets with an injected clock."""

from __future__ import annotations

import pytest

from livecore.clock import ManualClock
from livecore.ratelimit import KeyedLimiter


def test_burst_then_refill() -> None:
    """A key gets its burst at once, then rate tokens per second."""
    clock = ManualClock()
    limiter = KeyedLimiter(clock, rate=2, burst=3)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("a") == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_keys_are_independent() -> None:
    """One key's use does not spend another key's tokens."""
    limiter = KeyedLimiter(ManualClock(), rate=1, burst=1)
    assert limiter.allow("a") and limiter.allow("b")
    assert not limiter.allow("a")


def test_bounded_number_of_keys() -> None:
    """The limiter never holds more than max_keys buckets."""
    limiter = KeyedLimiter(ManualClock(), rate=1, burst=1, max_keys=10)
    for i in range(1000):
        limiter.allow(str(i))
    assert len(limiter) == 10


def test_refill_caps_at_burst() -> None:
    """Idle time never banks more than burst tokens."""
    clock = ManualClock()
    limiter = KeyedLimiter(clock, rate=10, burst=2)
    clock.advance(3600)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_bad_parameters() -> None:
    """Nonsense limits are refused at construction."""
    with pytest.raises(ValueError):
        KeyedLimiter(ManualClock(), rate=0, burst=1)


def test_prune_forgets_refilled_buckets() -> None:
    """prune() drops buckets that are full again, keeps those still spending."""
    from livecore.clock import ManualClock
    from livecore.ratelimit import KeyedLimiter

    clock = ManualClock()
    limiter = KeyedLimiter(clock, rate=1.0, burst=2.0)
    limiter.allow("old")
    clock.advance(5)
    limiter.allow("new")
    assert limiter.prune() == 1 and len(limiter) == 1
