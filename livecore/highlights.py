"""Highlight detection from the audience's per-second engagement (pure: no I/O, no clock).

The caller owns time: every method takes ``t``, seconds on the stream's own
timeline (0 = the recording's first keyframe), and ``advance(now)`` returns
the highlights decided up to ``now``. The same detector therefore runs live
(the hub's per-room service calls ``advance`` every second) and offline (a
benchmark feeds a trace's per-second counts and advances through it).

How a highlight is found (the rules behind each parameter of
:class:`DetectorParams`):

1. Signals are counted per second per kind (comments, likes, votes, group
   joins, viewer arrivals, officer sign-ups). Live, a count is of **people**:
   the distinct users who did that kind in the second, so one viewer's
   thousand taps is one person and cannot make a clip.
2. A second's engagement is ``x = sum(weight[kind] * count)``. Its baseline is
   the median ``m`` and variance ``v`` of ``x`` over the last ``baseline_s``
   seconds that were not part of a burst (robust to the bursts and swells
   among them; from the first second on, so a young stream has a true
   baseline after ``warmup_s``; while it holds fewer than ``baseline_s``
   seconds, one burst second in ``burst_every`` is taken too, so a baseline
   that does not know the room yet catches up instead of holding a burst
   open). The score of a second sums the last
   ``smooth_s`` seconds ``S`` against as many seconds of baseline:
   ``z = (S - k m) / sqrt(k max(v, m) + 1)`` (a Poisson-like floor, so a quiet
   room does not fire on one message; a reaction of several seconds adds up
   its evidence instead of being averaged away).
3. A burst starts when the score reaches ``high`` (its start moved back to
   the first of the summed seconds that was already above the baseline) and
   lasts while it stays at or above ``low``; it ends after ``quiet_s``
   seconds below ``low``, or after ``max_len_s`` (its level is then learned as
   the new normal: an audience that grew is not a moment).
4. Chat lags the moment that caused it: the highlight window is the burst
   shifted back by ``reaction_delay_s``, with ``lead_s`` seconds before it
   (the set-up) and ``tail_s`` after; then clamped to ``min_len_s`` ..
   ``max_len_s`` (a long window keeps the part around its peak). The
   reason's ``peak`` is the second with the most people, unshifted: where the
   audience reacted.
5. Explicit moments: a host ``mark`` at ``t`` gives ``[t - mark_before_s,
   t + mark_after_s]``; a product pin opens a product segment that ends at
   the next pin (or ``end``), or after ``max_len_s``; the host's 讲解 tap on a
   product opens an explanation segment (kind ``explain``) that ends at the
   next 讲解, its end, an unpin or the stream's end, or after
   ``max_explain_s``.
6. Caps: at most ``max_per_stream`` highlights, ``max_per_product`` per
   product, and ``max_explain`` explanation segments (which the per-product
   store ranks by clicks). A burst that overlaps a burst or mark already
   chosen is trimmed to begin where that one ends (two moments seconds
   apart are two clips), and dropped only if less than ``min_trimmed_s``
   remains. Product segments do not push bursts away: a burst inside one is
   the moment the audience reacted to.

The defaults of ``high``, ``low``, ``smooth_s``, ``quiet_s``, ``baseline_s``
and ``burst_every`` were tuned on ``loadtests.synth`` seeds 1-5 and
``loadtests.highlightshapes`` seeds 1-15 with its tuning shapes, then fixed;
docs/benchmarks.md reports the detector on held-out seeds and shapes.

A burst is decided ``quiet_s`` seconds after its last busy second; with the
default ``tail_s == reaction_delay_s`` the window ends at that last busy
second, so the decision comes ``quiet_s`` seconds after the window closes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
    EXPLAIN = "explain"
    """讲解: the host's tap on a product to the next 讲解, its end, or the stream's end."""


DEFAULT_WEIGHTS: Mapping[Signal, float] = {
    Signal.COMMENT: 1.0,
    Signal.LIKE: 0.5,
    Signal.VOTE: 0.75,
    Signal.JOIN: 1.5,
    Signal.ARRIVAL: 0.25,
    Signal.SIGNUP: 1.5,
}


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Every knob of the detector (seconds are stream seconds)."""

    baseline_s: float = 60.0
    smooth_s: int = 2
    high: float = 3.0
    low: float = 2.0
    quiet_s: int = 3
    warmup_s: int = 5
    burst_every: int = 2
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
    min_trimmed_s: float = 5.0
    """A burst trimmed to begin after an earlier clip keeps at least this much, or is dropped."""
    max_explain: int = 20
    """讲解 segments per stream (platforms cap product-explanation clips at 20 per live)."""
    min_explain_s: float = 3.0
    max_explain_s: float = 180.0
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


class _Baseline:
    """The usual engagement of a second: the median of the last ``size`` quiet seconds
    and their spread (median absolute deviation, scaled to a standard deviation),
    robust to the bursts and swells among them. From the first second on it is the
    median of what there is, so a young stream has a true baseline."""

    __slots__ = ("_window", "mean", "var")

    def __init__(self, size: int) -> None:
        self._window: deque[float] = deque(maxlen=max(3, size))
        self.mean = 0.0
        self.var = 0.0

    def z(self, x: float) -> float:
        return (x - self.mean) / math.sqrt(max(self.var, self.mean) + 1.0)

    @property
    def young(self) -> bool:
        """Fewer seconds seen than the window holds."""
        maxlen = self._window.maxlen or 0
        return len(self._window) < maxlen

    def update(self, x: float) -> None:
        self._window.append(x)
        ordered = sorted(self._window)
        self.mean = _median(ordered)
        self.var = sum((v - self.mean) ** 2 for v in ordered) / len(ordered)


def _median(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(slots=True)
class _Burst:
    start: int
    last_busy: int
    peak: int
    """The second of the most people (raw, unsmoothed): where the audience reacted most."""
    peak_raw: float
    peak_score: float
    counts: dict[str, int]
    xs: list[float] = field(default_factory=list)
    """Its seconds' weighted people (learned as the new normal if it lasts max_len_s)."""


class Detector:
    """Live highlight detector for one stream (see the module doc). Not thread-safe."""

    def __init__(self, params: DetectorParams | None = None, *, start: float = 0.0) -> None:
        self.p = params or DetectorParams()
        self._second = math.floor(start)
        self._first_second = self._second
        self._open: dict[Signal, int] = {}
        self._baseline = _Baseline(round(self.p.baseline_s))
        self._recent: deque[float] = deque(maxlen=self.p.smooth_s)
        self._burst: _Burst | None = None
        self._chosen: list[Highlight] = []
        self._per_product: dict[str, int] = {}
        self._product: tuple[str, float] | None = None
        self._product_emitted = False
        self._explaining: tuple[str, float] | None = None
        self._explained = 0
        self._pending: list[Highlight] = []
        self._ready: list[Highlight] = []
        self._ended = False

    # -- input ----------------------------------------------------------------------

    def add(self, kind: Signal | str, t: float, n: int = 1) -> None:
        """Count ``n`` signals of ``kind`` at ``t`` (a past second counts in the open one).

        Live, ``n`` is people (distinct users in the second), not taps."""
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
        """A product was pinned at ``t`` (``None``: unpinned): the previous segment ends.
        Unpinning, or pinning another product, also ends a 讲解 segment."""
        if self._ended:
            return
        self._step(t)
        self._close_product(t)
        self._product = (product, t) if product else None
        self._product_emitted = False
        if self._explaining is not None and self._explaining[0] != product:
            self._close_explain(t)  # another product (or none) is on the card now

    def explain(self, product: str | None, t: float) -> None:
        """The host taps 讲解 on ``product`` at ``t`` (``None``: the explanation ends):
        the open explanation segment, if any, ends here and a new one begins."""
        if self._ended:
            return
        self._step(t)
        self._close_explain(t)
        self._explaining = (product, t) if product else None

    def end(self, t: float) -> list[Highlight]:
        """The stream ended at ``t``: close what is open and return the last decisions."""
        self._step(t + self.p.quiet_s + self.p.mark_after_s + 1)
        self._close_product(t)
        self._close_explain(t)
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
        if self._explaining and now >= self._explaining[1] + p.max_explain_s:
            self._close_explain(self._explaining[1] + p.max_explain_s)
        self._flush_pending(now)

    @property
    def product(self) -> str | None:
        """The product pinned now (as the detector was told)."""
        return self._product_at()

    @property
    def chosen(self) -> list[Highlight]:
        """Highlights decided so far (bounded by ``max_per_stream`` + ``max_explain``)."""
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

    def _close_explain(self, t: float) -> None:
        if self._explaining is None:
            return
        product, since = self._explaining
        self._explaining = None
        p = self.p
        end = min(t, since + p.max_explain_s)
        if end - since >= p.min_explain_s and self._explained < p.max_explain:
            self._explained += 1
            self._ready.append(
                Highlight(since, end, HighlightKind.EXPLAIN, t, product=product, peak=since)
            )
            if len(self._chosen) < p.max_per_stream + p.max_explain:
                self._chosen.append(self._ready[-1])

    def _flush_pending(self, now: float) -> None:
        ready = [h for h in self._pending if h.decided_at <= now]
        self._pending = [h for h in self._pending if h.decided_at > now]
        for h in sorted(ready, key=lambda h: h.decided_at):
            accepted = self._accept(h)
            if accepted is not None:
                self._ready.append(accepted)

    def _accept(self, h: Highlight) -> Highlight | None:
        """``h`` as chosen (a burst trimmed to begin after the clips before it), or None."""
        p = self.p
        counted = [c for c in self._chosen if c.kind is not HighlightKind.EXPLAIN]
        if len(counted) >= p.max_per_stream:
            return None
        if h.product is not None and self._per_product.get(h.product, 0) >= p.max_per_product:
            return None
        if h.kind is HighlightKind.BURST:
            trimmed = self._trimmed(h, counted)
            if trimmed.start != h.start and trimmed.duration < p.min_trimmed_s:
                return None  # only a trimmed burst can be too short: min_len_s holds otherwise
            h = trimmed
        self._chosen.append(h)
        if h.product is not None:
            self._per_product[h.product] = self._per_product.get(h.product, 0) + 1
        return h

    def _trimmed(self, h: Highlight, chosen: list[Highlight]) -> Highlight:
        """A burst's window begins after every burst or mark already chosen that it
        overlaps (so two moments seconds apart make two clips, not one lost)."""
        start = h.start
        for other in chosen:
            if other.kind is HighlightKind.PRODUCT:
                continue
            if other.start < h.end and start < other.end:
                start = max(start, other.end)
        if start == h.start:
            return h
        return replace(h, start=start, end=max(h.end, min(start + self.p.min_len_s, h.end + 5)))

    def _close_second(self, second: int) -> None:
        p = self.p
        counts, self._open = self._open, {}
        x = sum(p.weights.get(sig, 0.0) * n for sig, n in counts.items())
        recent = self._recent
        recent.append(x)
        base = self._baseline
        k = len(recent)
        # The last smooth_s seconds together against k seconds of the baseline: a
        # reaction of several seconds adds its evidence instead of averaging it away.
        z = (sum(recent) - k * base.mean) / math.sqrt(k * max(base.var, base.mean) + 1.0)
        raw = base.z(x)
        score = max(0.0, z)
        warm = second - self._first_second >= p.warmup_s
        busy = warm and (score >= p.low if self._burst else score >= p.high)
        in_burst = busy or self._burst is not None
        if not in_burst or (base.young and second % p.burst_every == 0):
            # A burst's seconds are not the new normal; but while the baseline is young
            # (under baseline_s seconds) one in burst_every is taken, so a baseline that
            # does not know the room yet catches up instead of holding a burst open.
            base.update(x)
        burst = self._burst
        if busy:
            if burst is None:
                burst = self._burst = _Burst(second, second, second, raw, score, {})
                # The reaction began where the seconds summed into this score began to rise.
                burst.start = second - self._rising_for(base)
            burst.last_busy = second
            burst.peak_score = max(burst.peak_score, score)
            if raw > burst.peak_raw:
                burst.peak, burst.peak_raw = second, raw
        if burst is not None:
            for sig, n in counts.items():
                burst.counts[sig.value] = burst.counts.get(sig.value, 0) + n
            burst.xs.append(x)
            # A burst ends after quiet_s calm seconds, or at max_len_s (then the audience
            # it has been measured against is learned as the new normal).
            if second - burst.last_busy >= p.quiet_s or second - burst.start >= p.max_len_s:
                self._burst = None
                self._decide(burst, second + 1)
                if second - burst.last_busy < p.quiet_s:
                    for seen in burst.xs:
                        base.update(seen)

    def _rising_for(self, base: _Baseline) -> int:
        """Seconds before this one, within the smoothing window, already above the
        baseline by a standard deviation (the reaction's first seconds)."""
        n = 0
        for x in list(self._recent)[-2::-1]:
            if base.z(x) < 1.0:
                break
            n += 1
        return n

    def _decide(self, burst: _Burst, now: float) -> None:
        p = self.p
        shift = p.reaction_delay_s
        start = burst.start - shift - p.lead_s
        end = burst.last_busy + 1 - shift + p.tail_s
        if end - start > p.max_len_s:
            start = max(start, burst.peak - shift - p.max_len_s * 2 / 3)
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
            peak=float(burst.peak),
        )
        self._pending.append(h)
