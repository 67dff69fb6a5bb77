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


def test_a_caller_limit_behind_a_shared_address() -> None:
    """Many callers share one address's large bucket; each has its own small one."""
    from livecore.ratelimit import CallerLimiter, Limit

    clock = ManualClock()
    limiter = CallerLimiter(clock, caller=Limit(1, 2), address=Limit(10, 100))
    assert all(limiter.take(caller=f"u{i}", address="cgnat") is None for i in range(50))
    assert limiter.take(caller="u0", address="cgnat") is None
    refused = limiter.take(caller="u0", address="cgnat")
    assert refused is not None and refused.bucket == "caller"
    assert refused.retry_after_s == pytest.approx(1.0)
    clock.advance(1)
    assert limiter.take(caller="u0", address="cgnat") is None


def test_a_refusal_spends_nothing() -> None:
    """When the address refuses, the caller keeps its tokens, and the other way round."""
    from livecore.ratelimit import CallerLimiter, Limit

    limiter = CallerLimiter(ManualClock(), caller=Limit(1, 1), address=Limit(1, 2))
    assert limiter.take(caller="a", address="x") is None
    assert limiter.take(caller="a", address="x") == limiter.take(caller="a", address="x")
    assert limiter.take(caller="a", address="x") is not None  # caller empty: address kept
    assert limiter.take(caller="b", address="x") is None  # ... so b still gets it
    refused = limiter.take(caller="c", address="x")
    assert refused is not None and refused.bucket == "address"
    assert limiter.take(caller="c", address="y") is None  # c spent nothing at x
    assert limiter.take(address="z") is None and len(limiter) == 6


def test_take_spends_up_to_what_is_there() -> None:
    """``take`` grants whole tokens up to the bucket's content, then what refilled."""
    clock = ManualClock()
    limiter = KeyedLimiter(clock, rate=20, burst=20)
    assert limiter.take("u", 50) == 20
    assert limiter.take("u", 50) == 0
    clock.advance(0.5)
    assert limiter.take("u", 3) == 3
    assert limiter.take("u", 50) == 7
