"""Highlight detection from the audience's per-second engagement (pure: no I/O, no clock).

The caller owns time: every method takes ``t``, seconds on the stream's own
timeline (0 = the recording's first keyframe), and ``advance(now)`` returns
the highlights decided up to ``now``. The same detector therefore runs live
(the hub's per-room service calls ``advance`` every second) and offline (a
benchmark feeds a trace's per-second counts and advances through it).

How a highlight is found (the rules behind each parameter of
:class:`DetectorParams`):

1. Signals are counted per second per kind (comments, likes, votes, group
   joins, viewer arrivals, officer sign-ups).
2. Each kind has a moving baseline: an exponentially weighted mean and
   variance over about ``baseline_s`` seconds. A second's surprise for a kind
   is ``z = (x - mean) / sqrt(max(var, mean) + 1)`` (Poisson-like floor, so a
   kind that is usually silent does not fire on one message). The score of a
   second is ``sum(weight[kind] * max(0, z))``, averaged over the last
   ``smooth_s`` seconds. Seconds inside a burst update the baseline
   ``burst_damping`` times more slowly, so a long burst does not become the
   new normal.
3. A burst starts when the score reaches ``high`` and lasts while it stays at
   or above ``low``; it ends after ``quiet_s`` seconds below ``low`` (nearby
   peaks inside that gap merge into one burst).
4. Chat lags the moment that caused it: the highlight window is the burst
   shifted back by ``reaction_delay_s``, with ``lead_s`` seconds before it
   (the set-up) and ``tail_s`` after; then clamped to ``min_len_s`` ..
   ``max_len_s`` (a long window keeps the part around its peak).
5. Explicit moments: a host ``mark`` at ``t`` gives ``[t - mark_before_s,
   t + mark_after_s]``; a product pin opens a product-explanation segment
   that ends at the next pin (or ``end``), or after ``max_len_s``.
6. Caps: at most ``max_per_stream`` highlights, ``max_per_product`` per
   product; a detected burst must be ``min_spacing_s`` away from every burst
   and mark already chosen. Product segments do not push bursts away: they
   are the per-product explanation series (as TikTok Shop's), a burst inside
   one is the moment the audience reacted to.

The defaults of ``high``, ``low`` and ``burst_damping`` were tuned on
``loadtests.synth`` sessions with seeds 1-5 (4 and 10 minutes) and then
fixed; docs/benchmarks.md reports the detector on other seeds.

A burst is decided ``quiet_s`` seconds after its last busy second; with the
default ``tail_s == reaction_delay_s`` the window ends at that last busy
second, so the decision comes ``quiet_s`` seconds after the window closes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Signal(StrEnum):
    """What the audience does, counted per second."""

    COMMENT = "comment"
    LIKE = "like"
    VOTE = "vote"
    JOIN = "join"
    ARRIVAL = "arrival"
    SIGNUP = "signup"


class HighlightKind(StrEnum):
    BURST = "burst"
    MARK = "mark"
    PRODUCT = "product"


DEFAULT_WEIGHTS: Mapping[Signal, float] = {
    Signal.COMMENT: 1.0,
    Signal.LIKE: 0.5,
    Signal.VOTE: 0.75,
    Signal.JOIN: 1.5,
    Signal.ARRIVAL: 0.5,
    Signal.SIGNUP: 1.5,
}


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Every knob of the detector (seconds are stream seconds)."""

    baseline_s: float = 60.0
    smooth_s: int = 3
    high: float = 4.0
    low: float = 2.0
    quiet_s: int = 3
    burst_damping: float = 3.0
    warmup_s: int = 10
    reaction_delay_s: float = 4.5
    """Chat lags the moment by typing time plus stream latency (WebRTC: well under
    a second; HLS viewers: several seconds). Measured default: the median lag of
    the labelled reactions of ``loadtests.synth`` (seeds 1-5, 62 moments: 4.5 s,
    quartiles 3.0-5.8 s; pins 4.8, price drops 3.6, host moments 4.9), which
    follows Twitch-chat studies' 5-10 s less their ~5 s of stream delay."""
    lead_s: float = 5.0
    tail_s: float = 5.0
    min_len_s: float = 10.0
    max_len_s: float = 60.0
    mark_before_s: float = 25.0
    mark_after_s: float = 5.0
    max_per_stream: int = 20
    max_per_product: int = 3
    min_spacing_s: float = 10.0
    weights: Mapping[Signal, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        if not 0 < self.min_len_s <= self.max_len_s:
            raise ValueError("need 0 < min_len_s <= max_len_s")
        if self.low > self.high or self.smooth_s < 1 or self.quiet_s < 1:
            raise ValueError("need low <= high, smooth_s >= 1 and quiet_s >= 1")


@dataclass(frozen=True, slots=True)
class Highlight:
    """A chosen stretch of the stream and why it was chosen."""

    start: float
    end: float
    kind: HighlightKind
    decided_at: float
    score: float = 0.0
    product: str | None = None
    signals: Mapping[str, int] = field(default_factory=dict)
    peak: float | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def reason(self) -> dict[str, object]:
        """Why: the kind, the score, the signal counts of the burst, the peak second."""
        out: dict[str, object] = {"kind": self.kind.value, "score": round(self.score, 2)}
        if self.signals:
            out["signals"] = dict(self.signals)
        if self.peak is not None:
            out["peak"] = self.peak
        return out


@dataclass(slots=True)
class _Baseline:
    mean: float = 0.0
    var: float = 0.0

    def z(self, x: float) -> float:
        return (x - self.mean) / math.sqrt(max(self.var, self.mean) + 1.0)

    def update(self, x: float, alpha: float) -> None:
        delta = x - self.mean
        self.mean += alpha * delta
        self.var = (1 - alpha) * (self.var + alpha * delta * delta)


@dataclass(slots=True)
class _Burst:
    start: int
    last_busy: int
    peak: int
    peak_score: float
    counts: dict[str, int]


class Detector:
    """Live highlight detector for one stream (see the module doc). Not thread-safe."""

    def __init__(self, params: DetectorParams | None = None, *, start: float = 0.0) -> None:
        self.p = params or DetectorParams()
        self._second = math.floor(start)
        self._first_second = self._second
        self._open: dict[Signal, int] = {}
        self._baselines = {s: _Baseline() for s in Signal}
        self._recent: deque[float] = deque(maxlen=self.p.smooth_s)
        self._burst: _Burst | None = None
        self._chosen: list[Highlight] = []
        self._per_product: dict[str, int] = {}
        self._product: tuple[str, float] | None = None
        self._product_emitted = False
        self._pending: list[Highlight] = []
        self._ready: list[Highlight] = []
        self._ended = False

    # -- input ----------------------------------------------------------------------

    def add(self, kind: Signal | str, t: float, n: int = 1) -> None:
        """Count ``n`` signals of ``kind`` at ``t`` (a past second counts in the open one)."""
        if n <= 0 or self._ended:
            return
        sig = Signal(kind)
        self._step(t)
        self._open[sig] = self._open.get(sig, 0) + n

    def add_counts(self, t: float, counts: Mapping[str, int]) -> None:
        """All of one second's counts at once (for traces of per-second counts)."""
        for kind, n in counts.items():
            self.add(kind, t, n)

    def mark(self, t: float) -> None:
        """The host marked a moment at ``t``: decided at ``t + mark_after_s``."""
        if self._ended or len(self._pending) >= self.p.max_per_stream:
            return
        self._step(t)
        start = max(0.0, t - self.p.mark_before_s)
        end = t + self.p.mark_after_s
        self._pending.append(
            Highlight(start, end, HighlightKind.MARK, end, product=self._product_at(), peak=t)
        )

    def product_pinned(self, product: str | None, t: float) -> None:
        """A product was pinned at ``t`` (``None``: unpinned): the previous segment ends."""
        if self._ended:
            return
        self._step(t)
        self._close_product(t)
        self._product = (product, t) if product else None
        self._product_emitted = False

    def end(self, t: float) -> list[Highlight]:
        """The stream ended at ``t``: close what is open and return the last decisions."""
        self._step(t + self.p.quiet_s + self.p.mark_after_s + 1)
        self._close_product(t)
        self._flush_pending(math.inf)
        self._ended = True
        out, self._ready = self._ready, []
        return out

    # -- decisions ------------------------------------------------------------------

    def advance(self, now: float) -> list[Highlight]:
        """Close every whole second before ``now``; return highlights decided since the
        last call (each highlight is returned once)."""
        self._step(now)
        out, self._ready = self._ready, []
        return out

    def _step(self, now: float) -> None:
        if self._ended:
            return
        while self._second + 1 <= now:
            self._close_second(self._second)
            self._second += 1
        p = self.p
        if self._product and not self._product_emitted:
            product, since = self._product
            if now >= since + p.max_len_s:
                self._emit_product(product, since, since + p.max_len_s, now)
        self._flush_pending(now)

    @property
    def chosen(self) -> list[Highlight]:
        """Highlights decided so far (bounded by ``max_per_stream``)."""
        return list(self._chosen)

    # -- internals ------------------------------------------------------------------

    def _product_at(self) -> str | None:
        return self._product[0] if self._product else None

    def _close_product(self, t: float) -> None:
        if self._product is None or self._product_emitted:
            return
        product, since = self._product
        end = min(t, since + self.p.max_len_s)
        if end - since >= self.p.min_len_s:
            self._emit_product(product, since, end, t)
        self._product_emitted = True

    def _emit_product(self, product: str, start: float, end: float, now: float) -> None:
        self._product_emitted = True
        self._pending.append(Highlight(start, end, HighlightKind.PRODUCT, now, product=product))

    def _flush_pending(self, now: float) -> None:
        ready = [h for h in self._pending if h.decided_at <= now]
        self._pending = [h for h in self._pending if h.decided_at > now]
        for h in sorted(ready, key=lambda h: h.decided_at):
            if self._accept(h):
                self._ready.append(h)

    def _accept(self, h: Highlight) -> bool:
        p = self.p
        if len(self._chosen) >= p.max_per_stream:
            return False
        if h.product is not None and self._per_product.get(h.product, 0) >= p.max_per_product:
            return False
        if h.kind is HighlightKind.BURST:
            for other in self._chosen:
                if other.kind is HighlightKind.PRODUCT:
                    continue
                if h.start < other.end + p.min_spacing_s and other.start < h.end + p.min_spacing_s:
                    return False
        self._chosen.append(h)
        if h.product is not None:
            self._per_product[h.product] = self._per_product.get(h.product, 0) + 1
        return True

    def _close_second(self, second: int) -> None:
        p = self.p
        counts, self._open = self._open, {}
        raw = 0.0
        for sig, base in self._baselines.items():
            z = base.z(counts.get(sig, 0))
            raw += p.weights.get(sig, 0.0) * max(0.0, z)
        self._recent.append(raw)
        score = sum(self._recent) / len(self._recent)
        warm = second - self._first_second >= p.warmup_s
        busy = warm and (score >= p.low if self._burst else score >= p.high)
        alpha = 1.0 / p.baseline_s
        if busy or self._burst is not None:
            alpha /= p.burst_damping
        for sig, base in self._baselines.items():
            base.update(counts.get(sig, 0), alpha)
        burst = self._burst
        if busy:
            if burst is None:
                burst = self._burst = _Burst(second, second, second, score, {})
            burst.last_busy = second
            if score > burst.peak_score:
                burst.peak, burst.peak_score = second, score
        if burst is not None:
            for sig, n in counts.items():
                burst.counts[sig.value] = burst.counts.get(sig.value, 0) + n
            if second - burst.last_busy >= p.quiet_s:
                self._burst = None
                self._decide(burst, second + 1)

    def _decide(self, burst: _Burst, now: float) -> None:
        p = self.p
        shift = p.reaction_delay_s
        start = burst.start - shift - p.lead_s
        end = burst.last_busy + 1 - shift + p.tail_s
        peak = burst.peak - shift
        if end - start > p.max_len_s:
            start = max(start, peak - p.max_len_s * 2 / 3)
            end = start + p.max_len_s
        if end - start < p.min_len_s:
            end = start + p.min_len_s
        if start < 0:
            start, end = 0.0, end - start
        h = Highlight(
            start=float(start),
            end=float(end),
            kind=HighlightKind.BURST,
            decided_at=now,
            score=burst.peak_score,
            product=self._product_at(),
            signals=dict(burst.counts),
            peak=float(peak),
        )
        self._pending.append(h)
