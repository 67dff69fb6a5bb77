"""Which simulcast layer one viewer gets, from that viewer's own feedback: pure, no I/O.

Inputs, as they arrive: the viewer's receiver estimate (REMB, RFC draft
alvestrand-rmcat-remb; Chrome computes it from abs-send-time) and the loss
fraction of its receiver reports (RFC 3550 §6.4.1). ``choose`` is called about
twice a second with each layer's measured bitrate (low to high; 0 for a layer
the publisher is not sending) and returns the layer to be on.

- A layer fits when its rate is within ``headroom`` of the estimate, minus
  ``audio_reserve_bps`` (audio is never starved by video). Before any
  estimate, ``start_bps`` is assumed and the top layer is not a first
  choice (a publisher's rates are low while its own estimate ramps up, and a
  weak viewer would start on the top layer).
- Down fast: heavy loss in a report (``down_loss``) or a falling estimate below
  the current layer's rate (plus audio) steps down at once, to the best layer
  that fits
  (after loss, what got through: the layer's rate less the share lost);
  so does an estimate under ``under_share`` of the current layer's rate for
  ``under_s`` (a link that never carried it: a phone's first estimate comes
  only after seconds of media, near what it received).
- Up slowly, with a probe: a receive-side estimate grows only with what is
  received (libwebrtc caps it near 1.5x the incoming rate), so a viewer on a
  low layer can never show room for the next. After ``up_hold_s`` of clean
  feedback the next layer up is tried; loss or a falling estimate within
  ``probe_s`` sends it back and doubles the wait before the next probe (up to
  ``max_backoff_s``); a probe that holds resets it, and if feedback is still
  clean the next layer up is tried at once.

Times are seconds of an injected clock, so the rules are tested without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SelectorLimits:
    headroom: float = 0.9
    audio_reserve_bps: int = 64_000
    down_loss: float = 0.10
    """Fraction lost in one receiver report that steps down at once."""
    clean_loss: float = 0.02
    """Loss at or above this restarts the clean time a probe waits for."""
    up_hold_s: float = 3.0
    probe_s: float = 2.0
    backoff_s: float = 4.0
    max_backoff_s: float = 32.0
    start_bps: int = 1_000_000
    """What a viewer is assumed to carry before its first estimate."""
    falling: float = 0.85
    """An estimate below this share of the best of the last ``window_s`` is falling."""
    window_s: float = 2.0
    under_share: float = 0.7
    under_s: float = 2.0


class LayerSelector:
    """One viewer's layer choice (see the module doc)."""

    def __init__(self, now: float, limits: SelectorLimits | None = None) -> None:
        self.limits = limits or SelectorLimits()
        self.estimate_bps: int | None = None
        self._recent: list[tuple[float, int]] = []
        self._loss = 0.0
        self._clean_since = now
        self._probe_until = 0.0
        self._next_probe = now + self.limits.up_hold_s
        self._backoff = self.limits.backoff_s
        self._under_since: float | None = None
        self.switches_down = 0
        self.switches_up = 0

    def estimate(self, bps: int, now: float) -> None:
        """A REMB from the viewer."""
        self.estimate_bps = bps
        window = now - self.limits.window_s
        self._recent = [*[x for x in self._recent if x[0] >= window][-16:], (now, bps)]

    def loss(self, fraction: float, now: float) -> None:
        """A receiver report's fraction lost (0..1) for the viewer's video."""
        self._loss = max(self._loss, fraction)
        if fraction >= self.limits.clean_loss:
            self._clean_since = now

    @property
    def _is_falling(self) -> bool:
        if self.estimate_bps is None or not self._recent:
            return False
        return self.estimate_bps < self.limits.falling * max(b for _, b in self._recent)

    def budget(self) -> float:
        """Video bits per second this viewer's path is judged to carry."""
        limits = self.limits
        estimate = self.estimate_bps if self.estimate_bps is not None else limits.start_bps
        return estimate * limits.headroom - limits.audio_reserve_bps

    def choose(self, now: float, current: int | None, rates: Sequence[float]) -> int | None:
        """The layer (index into ``rates``, low to high) to be on; ``current`` if none is sent."""
        loss, self._loss = self._loss, 0.0
        active = [i for i, rate in enumerate(rates) if rate > 0]
        if not active:
            return current
        budget = self.budget()
        fitting = [i for i in active if rates[i] <= budget]
        best = fitting[-1] if fitting else active[0]
        if current is None and self.estimate_bps is None and len(active) > 1:
            return min(best, active[-2])  # a first layer before any feedback: never the top
        if current is None or current not in active:
            return best if current is None else min(best, max(active))
        limits = self.limits
        # Down on the estimate itself, not on the headroom kept for going up: a receive-side
        # estimate sits near what it receives, so "fits with headroom" fails on the top
        # layer in steady state.
        carried = (self.estimate_bps or 0) - limits.audio_reserve_bps
        falling = self._is_falling and carried < rates[current]
        congested = loss >= limits.down_loss or falling
        if self.estimate_bps is not None and carried < limits.under_share * rates[current]:
            if self._under_since is None:
                self._under_since = now
            congested = congested or now - self._under_since >= limits.under_s
        else:
            self._under_since = None
        if congested:
            self._under_since = None
            if loss >= limits.down_loss:  # what got through: the layer's rate less the loss
                through = rates[current] * (1 - loss) * limits.headroom
                fitting = [i for i in active if rates[i] <= through]
                best = min(best, fitting[-1] if fitting else active[0])
            below = [i for i in active if i < current]
            if not below:
                return current
            if now < self._probe_until:  # the probe failed: wait longer before the next
                self._backoff = min(self._backoff * 2, limits.max_backoff_s)
            self._probe_until = 0.0
            self._clean_since = now
            self._next_probe = now + self._backoff
            self.switches_down += 1
            return min(best, below[-1])
        if self._probe_until and now >= self._probe_until:
            self._probe_until = 0.0
            self._backoff = limits.backoff_s  # the probe held
        above = [i for i in active if i > current]
        clean = now - self._clean_since >= limits.up_hold_s
        if above and clean and now >= self._next_probe and not self._probe_until:
            self._probe_until = now + limits.probe_s
            self._next_probe = now + limits.probe_s  # and still clean: the next layer up
            self.switches_up += 1
            return above[0]
        return current
