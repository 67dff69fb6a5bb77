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


def test_a_probe_pads_before_it_moves_and_moves_when_the_estimate_grew() -> None:
    """A steady estimate that cannot show room for the next layer: after ``up_hold_s`` of
    clean feedback the viewer is padded up to the next layer's rate (its picture
    unchanged); an estimate grown enough moves it up (after ``min_probe_s`` already);
    once the move has landed and held for ``trial_s``, the next layer is probed at once."""
    limits = SelectorLimits(up_hold_s=2.0, probe_s=1.5, min_probe_s=1.0, trial_s=1.0)
    s = LayerSelector(0.0, limits)
    s.estimate(250_000, 0.5)
    assert s.choose(1.0, LOW, RATES) == LOW and s.padding_bps == 0  # not clean long enough
    assert s.choose(2.0, LOW, RATES) == LOW  # the probe starts: padding, same layer
    gap = RATES[MID] * limits.pad_over - RATES[LOW]
    assert s.padding_bps == gap / 2  # half the way at first, all of it by probe_s
    s.estimate(280_000, 2.4)
    assert s.choose(2.5, LOW, RATES) == LOW and gap / 2 < s.padding_bps < gap  # probing
    assert s.choose(3.0, LOW, RATES) == MID and s.padding_bps == 0  # 250k -> 280k: up
    s.landed(3.8)
    assert s.choose(4.5, MID, RATES) == MID and s.padding_bps == 0  # the trial
    assert s.choose(5.0, MID, RATES) == MID and s.padding_bps > 0  # held: the next probe


def test_a_probe_whose_estimate_stays_flat_fails_without_a_move() -> None:
    """A link already full (0.4 Mbit/s) holds a receive-side estimate flat under padding:
    the probe ends without moving the viewer, and the next one waits twice as long."""
    limits = SelectorLimits(up_hold_s=2.0, probe_s=1.5, backoff_s=2.0, max_backoff_s=8.0)
    s = LayerSelector(0.0, limits)
    s.estimate(250_000, 0.0)
    assert s.choose(2.0, LOW, RATES) == LOW and s.padding_bps > 0
    s.estimate(249_000, 3.0)
    assert s.choose(3.5, LOW, RATES) == LOW and s.padding_bps == 0  # flat: failed
    assert s.probes_failed == 1 and s.switches_up == 0
    assert s.choose(5.4, LOW, RATES) == LOW and s.padding_bps == 0  # waits 2 s
    assert s.choose(5.5, LOW, RATES) == LOW and s.padding_bps > 0  # the next probe
    assert s.choose(7.0, LOW, RATES) == LOW  # failed again: 4 s now, then 8, never more
    for _ in range(4):
        assert s._backoff <= 8.0
        s.choose(100.0, LOW, RATES)


def test_loss_during_a_probe_ends_it_at_once() -> None:
    """A receiver report with loss while padding: the probe stops there, no move up."""
    s = LayerSelector(0.0, SelectorLimits(up_hold_s=2.0, probe_s=1.5))
    s.estimate(250_000, 0.0)
    assert s.choose(2.0, LOW, RATES) == LOW and s.padding_bps > 0
    s.loss(0.05, 2.4)
    s.estimate(400_000, 2.4)
    assert s.choose(2.5, LOW, RATES) == LOW and s.padding_bps == 0
    assert s.probes_failed == 1


def test_a_failed_move_up_doubles_the_wait_and_a_held_one_resets_it() -> None:
    """Loss right after a probe's move up landed: back down, and the next probe waits
    twice as long; a move that held resets the wait."""
    limits = SelectorLimits(up_hold_s=2.0, probe_s=1.5, backoff_s=2.0, trial_s=1.0)
    s = LayerSelector(0.0, limits)
    s.estimate(250_000, 0.0)
    assert s.choose(2.0, LOW, RATES) == LOW
    s.estimate(280_000, 3.0)
    assert s.choose(3.5, LOW, RATES) == MID
    s.landed(3.6)
    s.loss(0.2, 4.0)
    assert s.choose(4.0, MID, RATES) == LOW  # the trial failed
    assert s._backoff == 4.0 and s.probes_failed == 1
    assert s.choose(5.9, LOW, RATES) == LOW and s.padding_bps == 0  # 4.0 + 2
    assert s.choose(6.0, LOW, RATES) == LOW and s.padding_bps > 0
    s.estimate(320_000, 7.0)
    assert s.choose(7.5, LOW, RATES) == MID
    s.landed(7.6)
    assert s.choose(8.6, MID, RATES) == MID  # held
    assert s._backoff == 2.0


def test_an_estimate_climbing_after_a_move_up_is_not_under() -> None:
    """After a move up a receive-side estimate climbs ~8 % a second towards the new
    layer: well under its rate, but rising, it is not a reason to go back down."""
    s = LayerSelector(0.0, SelectorLimits(under_s=2.0, up_hold_s=60.0))  # no probe here
    estimate = 250_000.0
    for step in range(10):
        now = 10.0 + step * 0.5
        s.estimate(int(estimate), now)
        assert s.choose(now, MID, RATES) == MID, now
        estimate *= 1.04
    chosen = []
    for step in range(9):  # it stops growing, still far under: down after under_s
        s.estimate(int(estimate), 15.0 + step * 0.5)
        chosen.append(s.choose(15.0 + step * 0.5, MID, RATES))
    assert chosen[:5] == [MID] * 5  # flat for under_s (and the window) first
    assert LOW in chosen


def test_an_estimate_that_carries_the_next_layer_moves_up_without_a_probe() -> None:
    """On the low layer with an estimate of 2 Mbit/s (kept from before): straight to
    the best layer that fits, no padding."""
    s = LayerSelector(0.0)
    s.estimate(2_000_000, 0.5)
    assert s.choose(1.0, LOW, RATES) == HIGH and s.padding_bps == 0


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


def test_a_resumed_top_layer_measuring_low_does_not_look_cheap() -> None:
    """The top layer back at 80 kbit/s (its encoder restarting), below the low one: it
    costs at least what the layers under it do, so a 400 kbit/s estimate does not fit it."""
    s = LayerSelector(0.0)
    s.estimate(400_000, 0.5)
    assert s.choose(1.0, LOW, [150_000.0, 500_000.0, 80_000.0]) == LOW


def test_a_falling_estimate_ends_a_probe_before_its_time() -> None:
    """The estimator saw queueing (its estimate fell a few percent): the padding stops at
    the next round, not at the end of the probe."""
    s = LayerSelector(0.0, SelectorLimits(up_hold_s=2.0, probe_s=1.5))
    s.estimate(250_000, 0.0)
    assert s.choose(2.0, LOW, RATES) == LOW and s.padding_bps > 0
    s.estimate(235_000, 2.3)
    assert s.choose(2.5, LOW, RATES) == LOW and s.padding_bps == 0
    assert s.probes_failed == 1


def test_a_probe_without_any_estimate_goes_on_up_to_twice_as_long() -> None:
    """No REMB since the probe began (a browser sends one when its estimate moves): the
    probe is not judged on nothing; an estimate that grew then moves the viewer up."""
    s = LayerSelector(0.0, SelectorLimits(up_hold_s=2.0, probe_s=1.5))
    s.estimate(250_000, 0.0)
    assert s.choose(2.0, LOW, RATES) == LOW and s.padding_bps > 0
    assert s.choose(3.5, LOW, RATES) == LOW and s.padding_bps > 0  # silent: on
    s.estimate(290_000, 3.8)
    assert s.choose(4.0, LOW, RATES) == MID


def test_an_estimate_near_the_goal_needs_only_to_creep_up() -> None:
    """Near the capacity it last found, libwebrtc's estimate grows ~1-2 % a probe: from
    690 kbit/s (85 % of the top layer plus audio) a probe without loss nor fall that
    saw 2 % moves the viewer up; the same 2 % far from the goal does not."""
    rates = [150_000.0, 370_000.0, 750_000.0]
    near = LayerSelector(0.0, SelectorLimits(up_hold_s=2.0, probe_s=1.5))
    near.estimate(690_000, 0.0)
    assert near.choose(2.0, MID, rates) == MID and near.padding_bps > 0
    near.estimate(704_000, 3.0)
    assert near.choose(3.5, MID, rates) == HIGH
    far = LayerSelector(0.0, SelectorLimits(up_hold_s=2.0, probe_s=1.5))
    far.estimate(250_000, 0.0)
    assert far.choose(2.0, LOW, rates) == LOW and far.padding_bps > 0
    far.estimate(255_000, 3.0)
    assert far.choose(3.5, LOW, rates) == LOW and far.padding_bps > 0  # climbing: on
    assert far.choose(5.0, LOW, rates) == LOW and far.probes_failed == 1  # not enough


def test_a_probe_that_goes_on_needs_growth_for_each_second() -> None:
    """An estimate creeping 7 % over 2.5 s of a probe (a full link) is not a link that
    carries more: one still climbing after ``probe_s`` needs 4 % a second."""
    s = LayerSelector(0.0, SelectorLimits(up_hold_s=2.0, probe_s=1.5, min_probe_s=1.0))
    s.estimate(205_000, 0.0)
    assert s.choose(2.0, LOW, RATES) == LOW and s.padding_bps > 0
    s.estimate(208_000, 3.0)
    assert s.choose(3.5, LOW, RATES) == LOW and s.padding_bps > 0  # climbing: on
    s.estimate(219_500, 4.4)
    assert s.choose(4.5, LOW, RATES) == LOW and s.padding_bps > 0  # +7 %, 10 % needed
    assert s.choose(5.0, LOW, RATES) == LOW and s.probes_failed == 1
