"""Token-bucket rate limits, keyed and bounded in memory.

A bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per
second; an action costs one token. The keyed limiter keeps at most
``max_keys`` buckets (least recently used are forgotten, which can only
make a limit more lenient for a key not seen for a while, never stricter).

``CallerLimiter`` is the shape of every per-request HTTP limit: a bucket for
who the caller is (a signed token's user, a guest's device) and a far larger
one for the address it comes from, sized for carrier-grade NAT, where a whole
residential compound (thousands of people) shares one public address: that
one only stops floods.
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

    def take(self, now: float, most: int) -> int:
        """Spend up to ``most`` whole tokens; how many were there (0 when empty)."""
        self.allow(now, 0.0)  # refill to now, spend nothing
        granted = min(most, int(self.tokens))
        self.tokens -= granted
        return max(0, granted)

    def ready(self, now: float, cost: float = 1.0) -> bool:
        """Whether ``cost`` tokens are there, spending none."""
        return min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate) >= cost

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

    def take(self, key: str, most: int) -> int:
        """Spend up to ``most`` whole tokens of ``key``'s bucket; how many it had."""
        return self._bucket(key).take(self.clock.monotonic(), most)

    def ready(self, key: str, cost: float = 1.0) -> bool:
        """Whether ``key`` has ``cost`` tokens, spending none."""
        return self._bucket(key).ready(self.clock.monotonic(), cost)

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``key`` may act again."""
        bucket = self._bucket(key)
        bucket.allow(self.clock.monotonic(), 0.0)  # refill to now, spend nothing
        return bucket.retry_after(cost)

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


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` actions per second, ``burst`` at once."""

    rate: float
    burst: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which bucket refused (``"caller"`` or ``"address"``) and when to retry."""

    bucket: str
    retry_after_s: float


class CallerLimiter:
    """A bucket per caller and a bucket per client address, taken together.

    ``take(caller=..., address=...)`` allows an action only when every bucket
    named has a token, and then spends one of each; a refusal spends nothing
    (so a refused request leaves no trace, not even in the other bucket). A
    caller key must be one the server verified (a signed token's user, a
    guest id with its device key): nobody can then spend another's tokens.
    """

    def __init__(
        self, clock: Clock, *, caller: Limit, address: Limit, max_keys: int = 100_000
    ) -> None:
        self.caller = KeyedLimiter(clock, rate=caller.rate, burst=caller.burst,
                                   max_keys=max_keys)  # fmt: skip
        self.address = KeyedLimiter(clock, rate=address.rate, burst=address.burst,
                                    max_keys=max_keys)  # fmt: skip

    def take(self, *, caller: str | None = None, address: str | None = None) -> Refusal | None:
        """Spend one token of ``caller`` and of ``address`` (either may be None: not
        checked); None when allowed, else the first bucket that refused."""
        named = [(n, lim, key) for n, lim, key in (("address", self.address, address),
                                                   ("caller", self.caller, caller))
                 if key is not None]  # fmt: skip
        for name, limiter, key in named:
            if not limiter.ready(key):
                return Refusal(name, limiter.retry_after(key))
        for _, limiter, key in named:
            limiter.allow(key)
        return None

    def prune(self) -> int:
        """Forget refilled buckets of both kinds (see ``KeyedLimiter.prune``)."""
        return self.caller.prune() + self.address.prune()

    def __len__(self) -> int:
        return len(self.caller) + len(self.address)
