"""The layer rules without a network: estimates, losses and times are given."""

from __future__ import annotations

from media.layerselect import LayerSelector, SelectorLimits

RATES = [150_000.0, 500_000.0, 1_500_000.0]
LOW, MID, HIGH = 0, 1, 2


def test_first_choice_is_the_best_layer_the_start_budget_carries() -> None:
    """No estimate yet: 1 Mbit/s assumed, less headroom and audio: the mid layer."""
    assert LayerSelector(0.0).choose(0.0, None, RATES) == MID


def test_a_falling_estimate_steps_down_at_once_to_what_fits() -> None:
    """REMB 2 Mbit/s then 300 kbit/s: from high straight to low (300k*0.9-64k < 500k)."""
    s = LayerSelector(0.0)
    s.estimate(2_000_000, 1.0)
    assert s.choose(1.0, HIGH, RATES) == HIGH
    s.estimate(300_000, 1.5)
    assert s.choose(1.5, HIGH, RATES) == LOW
    assert s.switches_down == 1


def test_heavy_loss_steps_down_one_layer_even_with_a_good_estimate() -> None:
    """A receiver report with 15 % lost: down one layer, not to the bottom."""
    s = LayerSelector(0.0)
    s.estimate(5_000_000, 0.5)
    s.loss(0.15, 1.0)
    assert s.choose(1.0, HIGH, RATES) == MID


def test_up_only_after_clean_time_one_layer_at_a_time() -> None:
    """A steady estimate that cannot show room for the next layer: a probe after
    ``up_hold_s`` of clean feedback, one layer; once it held, the next."""
    limits = SelectorLimits(up_hold_s=3.0, probe_s=2.0)
    s = LayerSelector(0.0, limits)
    s.estimate(250_000, 0.5)
    assert s.choose(1.0, LOW, RATES) == LOW  # not clean for long enough yet
    assert s.choose(3.0, LOW, RATES) == MID  # the probe
    s.estimate(600_000, 4.0)
    assert s.choose(4.9, MID, RATES) == MID  # still inside the probe
    assert s.choose(5.0, MID, RATES) == HIGH  # it held, feedback still clean


def test_a_failed_probe_doubles_the_wait_and_a_held_one_resets_it() -> None:
    """Loss during a probe: back down, and the next probe waits twice as long."""
    limits = SelectorLimits(up_hold_s=3.0, probe_s=2.0, backoff_s=4.0)
    s = LayerSelector(0.0, limits)
    s.estimate(250_000, 0.0)
    assert s.choose(3.0, LOW, RATES) == MID
    s.loss(0.2, 3.5)
    assert s.choose(3.5, MID, RATES) == LOW  # the probe failed: back off 8 s
    assert s.choose(10.0, LOW, RATES) == LOW
    assert s.choose(11.6, LOW, RATES) == MID  # 3.5 + 8
    assert s._backoff == 8.0
    assert s.choose(13.7, MID, RATES) == HIGH  # held past probe_s: the next one at once
    assert s._backoff == 4.0


def test_a_layer_not_sent_is_never_chosen() -> None:
    """Rates of 0 (the publisher dropped the high layer): the viewer on it moves to mid."""
    s = LayerSelector(0.0)
    s.estimate(5_000_000, 0.0)
    assert s.choose(0.5, HIGH, [150_000.0, 500_000.0, 0.0]) == MID
    assert s.choose(0.5, None, [0.0, 0.0, 0.0]) is None


def test_audio_is_reserved_from_the_budget() -> None:
    """An estimate of exactly the mid layer's rate does not fit it: audio comes first."""
    s = LayerSelector(0.0)
    s.estimate(int(500_000 / 0.9), 0.0)
    assert s.budget() < 500_000
    assert s.choose(0.0, None, RATES) == LOW


def test_an_estimate_that_stays_far_under_the_layer_steps_down_after_a_while() -> None:
    """A steady REMB of 400 kbit/s on the 1.5 Mbit/s layer (never falling): down after
    ``under_s``, to the best layer that fits; a short dip is not enough."""
    s = LayerSelector(0.0, SelectorLimits(under_s=2.0))
    s.estimate(400_000, 0.0)
    assert s.choose(0.5, HIGH, RATES) == HIGH
    s.estimate(5_000_000, 1.0)
    assert s.choose(1.0, HIGH, RATES) == HIGH  # the dip ended
    s.estimate(400_000, 4.0)
    assert s.choose(4.0, HIGH, RATES) == HIGH
    assert s.choose(5.9, HIGH, RATES) == HIGH  # not falling: 5 M left the window
    assert s.choose(6.0, HIGH, RATES) == LOW  # under for 2 s: to the best that fits


def test_heavy_loss_goes_straight_to_what_got_through() -> None:
    """70 % lost on the 1.5 Mbit/s layer (450 kbit/s got through): straight to the
    150 kbit/s layer, not one step at a time."""
    s = LayerSelector(0.0)
    s.estimate(5_000_000, 0.5)
    s.loss(0.7, 1.0)
    assert s.choose(1.0, HIGH, RATES) == LOW


def test_no_first_choice_of_the_top_layer_before_feedback() -> None:
    """All layers under the start budget (a publisher still ramping up): the middle one."""
    s = LayerSelector(0.0)
    assert s.choose(0.0, None, [50_000.0, 150_000.0, 400_000.0]) == MID
    s.estimate(5_000_000, 0.5)
    assert s.choose(0.5, None, [50_000.0, 150_000.0, 400_000.0]) == HIGH
