"""Token-bucket rate limits, keyed and bounded in memory.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second; an action costs one token. The keyed limiter keeps at most
``max_keys`` buckets (least recently used are forgotten, which can only
make a limit more lenient for a key not seen for a while, never stricter).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from livecore.clock import Clock


@dataclass(slots=True)
class TokenBucket:
    """One bucket; ``allow(now)`` spends a token if one is there."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def allow(self, now: float, cost: float = 1.0) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there again."""
        missing = max(0.0, cost - self.tokens)
        return missing / self.rate if self.rate > 0 else float("inf")


class KeyedLimiter:
    """A token bucket per key (user id, client address), at most ``max_keys`` of them."""

    def __init__(self, clock: Clock, *, rate: float, burst: float, max_keys: int = 100_000):
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be > 0, burst >= 1 and max_keys >= 1")
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``'s bucket; False when it is empty."""
        return self._bucket(key).allow(self.clock.monotonic(), cost)

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``key`` may act again."""
        return self._bucket(key).retry_after(cost)

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, self.burst, self.clock.monotonic())
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)

    def prune(self) -> int:
        """Forget the buckets that have refilled completely (a fresh bucket would be
        the same), oldest first; returns how many. Bounded work: it stops at the
        first bucket not yet full, as the rest were used more recently."""
        now = self.clock.monotonic()
        full_after = self.burst / self.rate
        pruned = 0
        while self._buckets:
            key, bucket = next(iter(self._buckets.items()))
            if now - bucket.updated < full_after:
                break
            del self._buckets[key]
            pruned += 1
        return pruned
