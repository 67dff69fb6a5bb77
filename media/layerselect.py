"""Which simulcast layer one viewer gets, from that viewer's own feedback: pure, no I/O.

Inputs, as they arrive: the viewer's receiver estimate (REMB, RFC draft
alvestrand-rmcat-remb; Chrome computes it from abs-send-time) and the loss
fraction of its receiver reports (RFC 3550 §6.4.1). ``choose`` is called about
twice a second with each layer's measured bitrate (smallest picture first; 0
for a layer the publisher is not sending) and the layer the viewer is on or
was last sent to, and returns the layer to be on.

- A layer fits when its rate is within ``headroom`` of the estimate, minus
  ``audio_reserve_bps`` (audio is never starved by video). Before any
  estimate, ``start_bps`` is assumed and the top layer is not a first
  choice (a publisher's rates are low while its own estimate ramps up, and a
  weak viewer would start on the top layer).
- Down fast: heavy loss in a report (``down_loss``) or a falling estimate below
  the current layer's rate (plus audio) steps down at once, to the best layer
  that fits (after loss, what got through: the layer's rate less the share
  lost); so does an estimate under ``under_share`` of the current layer's rate
  for ``under_s`` that is not rising (a link that never carried it: a phone's
  first estimate comes only after seconds of media, near what it received).
  A receive-side estimate that grows is a link that carries what it gets: a
  viewer that has just moved up is not sent back for an estimate still
  climbing towards its new layer.
- Up when the estimate already carries the next layer; otherwise by a probe,
  as SFUs with their own estimator do (LiveKit's and mediasoup's padding
  probes): a receive-side estimate grows only with what is received (libwebrtc
  caps it near 1.5x the incoming rate), so a viewer on a low layer can never
  show room for the next by its media alone. After ``up_hold_s`` of clean
  feedback the viewer is *padded* (``padding_bps``: duplicates of its own
  recent packets, which the browser counts and drops) up to the next layer's
  rate for ``probe_s``, its picture unchanged. Loss, a falling estimate, or an
  estimate that did not grow by ``probe_gain`` over the probe (a link already
  full holds it flat) ends the probe, and the next one waits twice as long
  (``backoff_s`` up to ``max_backoff_s``: short, a probe costs no picture); an
  estimate that grew moves the viewer up, and for ``trial_s`` after it lands
  (``landed``) a drop sends it back as a failed probe. A trial that holds
  resets the wait and the next layer up is probed at once.

Times are seconds of an injected clock, so the rules are tested without one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

LAND_WAIT_S = 3.0
"""A move up that has not landed after this long (no keyframe of its layer) is not judged."""


@dataclass(frozen=True, slots=True)
class SelectorLimits:
    headroom: float = 0.9
    audio_reserve_bps: int = 64_000
    down_loss: float = 0.10
    """Fraction lost in one receiver report that steps down at once."""
    clean_loss: float = 0.02
    """Loss at or above this restarts the clean time a probe waits for, and ends a probe."""
    up_hold_s: float = 2.0
    probe_s: float = 1.5
    """How long a viewer is padded towards the next layer before judging the probe."""
    min_probe_s: float = 1.0
    """An estimate grown enough ends the probe (moving up) after this long already."""
    probe_gain: float = 1.06
    """Growth of the estimate over a probe that shows the link carries more (libwebrtc's
    receive-side estimate climbs up to ~8 % a second when nothing queues; a full link's
    moved 4-5 % in the lab)."""
    probe_gain_per_s: float = 0.04
    """A probe that goes on needs this growth for each second of it (a full link's
    estimate crept 6-7 % over 2.5 s in the lab; a free link's grows ~8 % a second)."""
    probe_near: float = 0.8
    """An estimate already this share of the goal (the next layer's rate plus audio) ..."""
    probe_near_gain: float = 1.01
    """... needs only this growth: libwebrtc's estimate creeps near the link's capacity it
    last found, and a probe without loss nor fall there is the link carrying the goal."""
    probe_drop: float = 0.97
    """An estimate under this share of the probe's first one ends the probe at once."""
    pad_over: float = 1.1
    """Padding brings what the viewer receives to the next layer's rate times this."""
    trial_s: float = 0.5
    """After a probe's move up has landed, a drop in this time is a failed probe."""
    backoff_s: float = 2.0
    max_backoff_s: float = 8.0
    start_bps: int = 1_000_000
    """What a viewer is assumed to carry before its first estimate."""
    falling: float = 0.85
    """An estimate below this share of the best of the last ``window_s`` is falling."""
    rising: float = 1.02
    """An estimate above this share of the oldest of the last ``window_s`` is rising."""
    window_s: float = 2.0
    under_share: float = 0.7
    under_s: float = 2.0


@dataclass(slots=True)
class _Probe:
    target: int
    started: float
    estimate: int
    """The estimate when it started (0: none yet)."""


class LayerSelector:
    """One viewer's layer choice (see the module doc)."""

    def __init__(self, now: float, limits: SelectorLimits | None = None) -> None:
        self.limits = limits or SelectorLimits()
        self.estimate_bps: int | None = None
        self._heard_at = -1e9
        """When the last estimate came."""
        self._recent: list[tuple[float, int]] = []
        self._loss = 0.0
        self._clean_since = now
        self._next_probe = now + self.limits.up_hold_s
        self._backoff = self.limits.backoff_s
        self._under_since: float | None = None
        self._probe: _Probe | None = None
        self._trial = False
        """A probe's move up is on its way or landed less than ``trial_s`` ago."""
        self._trial_until: float | None = None
        self._trial_since = now
        self.padding_bps = 0.0
        """Padding the viewer should get now (bits per second; 0 outside a probe)."""
        self.switches_down = 0
        self.switches_up = 0
        self.probes_failed = 0
        self.why = "start"
        """Why the last ``choose`` chose what it did (for the debug trace)."""
        self.last_loss = 0.0
        """The worst loss fraction the last ``choose`` saw."""

    def estimate(self, bps: int, now: float) -> None:
        """A REMB from the viewer."""
        self.estimate_bps = bps
        self._heard_at = now
        window = now - self.limits.window_s
        self._recent = [*[x for x in self._recent if x[0] >= window][-16:], (now, bps)]

    def loss(self, fraction: float, now: float) -> None:
        """A receiver report's fraction lost (0..1) for the viewer's video."""
        self._loss = max(self._loss, fraction)
        if fraction >= self.limits.clean_loss:
            self._clean_since = now

    def landed(self, now: float) -> None:
        """The viewer now receives the layer last chosen (its keyframe was sent)."""
        if self._trial:
            self._trial_until = now + self.limits.trial_s

    def _window(self, now: float) -> list[int]:
        """The estimates of the last ``window_s``, oldest first."""
        return [b for t, b in self._recent if t >= now - self.limits.window_s]

    def _is_falling(self, now: float) -> bool:
        recent = self._window(now)
        if self.estimate_bps is None or not recent:
            return False
        return self.estimate_bps < self.limits.falling * max(recent)

    def _is_rising(self, now: float) -> bool:
        recent = self._window(now)
        if self.estimate_bps is None or len(recent) < 2:
            return False
        return self.estimate_bps > self.limits.rising * recent[0]

    def budget(self) -> float:
        """Video bits per second this viewer's path is judged to carry."""
        limits = self.limits
        estimate = self.estimate_bps if self.estimate_bps is not None else limits.start_bps
        return estimate * limits.headroom - limits.audio_reserve_bps

    def choose(self, now: float, current: int | None, rates: Sequence[float]) -> int | None:
        """The layer (index into ``rates``, smallest first) to be on; ``current`` if none sent."""
        loss, self._loss = self._loss, 0.0
        self.last_loss = loss
        self.padding_bps = 0.0
        active = [i for i, rate in enumerate(rates) if rate > 0]
        if not active:
            self.why = "no layer sent"
            return current
        # A larger picture costs at least what a smaller one does: a layer the publisher
        # has just resumed measures low for a second or two, and must not look cheap.
        rates = list(itertools.accumulate(rates, max))
        budget = self.budget()
        fitting = [i for i in active if rates[i] <= budget]
        best = fitting[-1] if fitting else active[0]
        if current is None and self.estimate_bps is None and len(active) > 1:
            self.why = "first, before any estimate"
            return min(best, active[-2])  # a first layer before any feedback: never the top
        if current is None or current not in active:
            self.why = "first" if current is None else "layer gone"
            self._probe, self._trial, self._trial_until = None, False, None
            return best if current is None else min(best, max(active))
        down = self._down(now, current, rates, active, loss, best)
        if down is not None:
            return down
        return self._up(now, current, rates, active, loss, fitting)

    def _down(
        self, now: float, current: int, rates: Sequence[float], active: list[int],
        loss: float, best: int,
    ) -> int | None:  # fmt: skip
        """The layer to step down to now, or None (see the module doc)."""
        limits = self.limits
        # Down on the estimate itself, not on the headroom kept for going up: a receive-side
        # estimate sits near what it receives, so "fits with headroom" fails on the top
        # layer in steady state.
        carried = (self.estimate_bps or 0) - limits.audio_reserve_bps
        falling = self._is_falling(now) and carried < rates[current]
        congested = loss >= limits.down_loss or falling
        under = self.estimate_bps is not None and carried < limits.under_share * rates[current]
        if under and not self._is_rising(now):
            if self._under_since is None:
                self._under_since = now
            congested = congested or now - self._under_since >= limits.under_s
        else:
            self._under_since = None
        if not congested:
            return None
        self.why = (
            f"down: loss {loss:.2f}" if loss >= limits.down_loss
            else "down: falling" if falling else "down: under"
        )  # fmt: skip
        self._under_since = None
        if loss >= limits.down_loss:  # what got through: the layer's rate less the loss
            through = rates[current] * (1 - loss) * limits.headroom
            fitting = [i for i in active if rates[i] <= through]
            best = min(best, fitting[-1] if fitting else active[0])
        self._clean_since = now
        if self._probe is not None or self._trial:  # the probe failed: wait longer
            self._failed(now, "probe failed, " + self.why)
        else:  # the link shrank (or a failed probe's late reports): the wait as it is
            self._next_probe = now + self._backoff
        below = [i for i in active if i < current]
        if not below:
            self.why += ", none below"
            return current
        self.switches_down += 1
        return min(best, below[-1])

    def _failed(self, now: float, why: str) -> None:
        self._probe, self._trial, self._trial_until = None, False, None
        self._next_probe = now + self._backoff
        self._backoff = min(self._backoff * 2, self.limits.max_backoff_s)
        self.probes_failed += 1
        self.why = why

    def _up(
        self, now: float, current: int, rates: Sequence[float], active: list[int],
        loss: float, fitting: list[int],
    ) -> int:  # fmt: skip
        """The layer to be on when not stepping down: the same, or one a probe earned."""
        limits = self.limits
        held = self._trial_until is not None and now >= self._trial_until
        if held:  # the move up held: the next probe may start at once
            self._trial, self._trial_until = False, None
            self._backoff = limits.backoff_s
            self._next_probe = now
        if self._trial and self._trial_until is None and now - self._trial_since > LAND_WAIT_S:
            self._trial_until = now  # it never landed (no keyframe came): no trial to judge
        if self._trial:
            self.why = "trial"
            return current
        above = [i for i in active if i > current]
        if not above:
            self._probe = None
            self.why = "top"
            return current
        clean = loss < limits.clean_loss
        if clean and fitting and fitting[-1] > current:  # it carries more already
            self._probe = None
            self.switches_up += 1
            self.why = "up: fits"
            return fitting[-1]
        probe = self._probe
        if probe is not None:
            estimate = self.estimate_bps or 0
            if probe.target not in above or not clean:
                self._failed(now, f"probe failed: loss {loss:.2f}")
                return current
            if self._heard_at > probe.started and estimate < probe.estimate * limits.probe_drop:
                self._failed(now, f"probe failed: estimate fell {probe.estimate} -> {estimate}")
                return current
            goal = rates[probe.target] + limits.audio_reserve_bps
            near = probe.estimate >= limits.probe_near * goal
            spent = now - probe.started
            far_gain = max(limits.probe_gain, 1 + limits.probe_gain_per_s * spent)
            grown = estimate >= probe.estimate * (limits.probe_near_gain if near else far_gain)
            # Judged after ``min_probe_s`` once grown enough, else after ``probe_s``; with no
            # estimate since it began (a browser sends REMB when its estimate moves), or one
            # still climbing but not yet by enough, it goes on up to twice as long.
            silent = self._heard_at <= probe.started
            climbing = self._heard_at > probe.started and estimate > probe.estimate
            if (
                spent < limits.min_probe_s
                or (spent < limits.probe_s and not grown)
                or ((silent or (climbing and not grown)) and spent < 2 * limits.probe_s)
            ):
                self.padding_bps = self._padding(current, probe, rates, now)
                self.why = f"probing {probe.target}" + (", no estimate yet" if silent else "")
                return current
            if not grown:
                self._failed(now, f"probe failed: estimate {probe.estimate} -> {estimate}")
                return current
            self._probe, self._trial, self._trial_until = None, True, None
            self._trial_since = now
            self.switches_up += 1
            self.why = f"up: probe held ({probe.estimate} -> {estimate})"
            return probe.target
        waited = now - self._clean_since >= limits.up_hold_s and now >= self._next_probe
        if not waited:
            wait = max(self._next_probe, self._clean_since + limits.up_hold_s) - now
            self.why = f"hold: next probe in {wait:.1f} s"
            return current
        self._probe = _Probe(above[0], now, self.estimate_bps or 0)
        self.padding_bps = self._padding(current, self._probe, rates, now)
        self.why = f"probe {above[0]} (backoff {self._backoff:g} s)"
        return current

    def _padding(self, current: int, probe: _Probe, rates: Sequence[float], now: float) -> float:
        """Half the way to the probe's goal at first, all of it after ``probe_s``: a link
        that cannot carry the goal queues less before its feedback ends the probe."""
        gap = max(0.0, rates[probe.target] * self.limits.pad_over - rates[current])
        return gap * (0.5 + 0.5 * min(1.0, (now - probe.started) / self.limits.probe_s))
