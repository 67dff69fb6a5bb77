"""The per-room sequencer: in-order delivery, duplicates, gaps, fills and resets."""

from __future__ import annotations

import pytest

from livecore import sequencer
from livecore.sequencer import Sequencer, Verdict


def ev(offset: int) -> tuple[int, bytes]:
    """An event with a payload that names its offset."""
    return offset, f"e{offset}".encode()


def push(seq: Sequencer, offset: int, epoch: str = "E") -> Verdict:
    """Push the event at offset in the given epoch."""
    return seq.push(epoch, *ev(offset))


def test_in_order_events_are_ready() -> None:
    """Consecutive offsets are READY and take() returns them once, in order."""
    seq = Sequencer("E", 0)
    assert [push(seq, o) for o in (1, 2, 3)] == [Verdict.READY] * 3
    assert seq.take() == [ev(1), ev(2), ev(3)]
    assert seq.take() == []
    assert seq.offset == 3
    assert seq.gap is None


def test_starts_after_a_known_offset() -> None:
    """A sequencer built at offset n expects n + 1 next."""
    seq = Sequencer("E", 41)
    assert push(seq, 42) is Verdict.READY
    assert seq.take() == [ev(42)]


def test_duplicates() -> None:
    """Offsets at or below the held one, or already held after a gap, are DUPLICATE."""
    seq = Sequencer("E", 0)
    push(seq, 1)
    push(seq, 2)
    seq.take()
    assert push(seq, 2) is Verdict.DUPLICATE
    assert push(seq, 1) is Verdict.DUPLICATE
    assert push(seq, 0) is Verdict.DUPLICATE
    assert push(seq, 5) is Verdict.GAP
    assert push(seq, 5) is Verdict.DUPLICATE
    assert seq.take() == []
    assert seq.offset == 2


def test_gap_then_held() -> None:
    """An out-of-order arrival is a GAP naming the missing offsets; later ones are HELD."""
    seq = Sequencer("E", 3)
    assert push(seq, 4) is Verdict.READY
    assert push(seq, 7) is Verdict.GAP
    assert seq.gap == (4, 6)
    assert push(seq, 8) is Verdict.HELD
    assert push(seq, 10) is Verdict.HELD
    assert seq.gap == (4, 6)  # the gap being fetched does not move
    assert seq.take() == [ev(4)]  # nothing past the gap is delivered
    assert seq.offset == 4


def test_fill_releases_everything_in_order() -> None:
    """fill() with the missing history delivers it and every held event, in order."""
    seq = Sequencer("E", 0)
    push(seq, 1)
    push(seq, 4)
    push(seq, 5)
    seq.take()
    assert seq.fill([ev(2), ev(3)]) is True
    assert seq.take() == [ev(2), ev(3), ev(4), ev(5)]
    assert seq.offset == 5
    assert seq.gap is None
    assert push(seq, 6) is Verdict.READY


def test_fill_ignores_history_already_held_or_delivered() -> None:
    """History that overlaps delivered or held offsets delivers each offset once."""
    seq = Sequencer("E", 0)
    push(seq, 1)
    push(seq, 3)
    seq.take()
    history = [(1, b"old"), ev(2), (3, b"from-history")]
    assert seq.fill(history) is True
    assert seq.take() == [ev(2), ev(3)]  # the held (live) payload of 3 is kept


def test_in_order_arrival_during_gap_waits_for_fill() -> None:
    """The next offset arriving while a gap is being fetched is HELD, then released by fill()."""
    seq = Sequencer("E", 0)
    push(seq, 3)  # gap (0, 2)
    assert push(seq, 1) is Verdict.HELD
    assert seq.take() == []
    assert seq.fill([ev(2)]) is True
    assert seq.take() == [ev(1), ev(2), ev(3)]


def test_fill_that_does_not_cover_the_gap() -> None:
    """fill() short of the gap returns False, delivers what it can and names what is left."""
    seq = Sequencer("E", 4)
    push(seq, 8)
    assert seq.gap == (4, 7)
    assert seq.fill([ev(5)]) is False
    assert seq.take() == [ev(5)]
    assert seq.gap == (5, 7)
    assert seq.fill([]) is False
    assert seq.gap == (5, 7)
    assert seq.fill([ev(6), ev(7)]) is True
    assert seq.take() == [ev(6), ev(7), ev(8)]
    assert seq.gap is None


def test_fill_with_a_hole_in_the_history() -> None:
    """History with a hole delivers up to the hole and reports the hole as the new gap."""
    seq = Sequencer("E", 0)
    push(seq, 6)
    assert seq.fill([ev(1), ev(2), ev(4), ev(5)]) is False
    assert seq.take() == [ev(1), ev(2)]
    assert seq.gap == (2, 3)  # (after, upto): offset 3 is missing
    assert seq.fill([ev(3)]) is True
    assert seq.take() == [ev(3), ev(4), ev(5), ev(6)]


def test_other_epoch_resets() -> None:
    """An event of another epoch is RESET and changes nothing."""
    seq = Sequencer("E", 5)
    assert push(seq, 6, epoch="F") is Verdict.RESET
    assert push(seq, 1, epoch="F") is Verdict.RESET
    assert seq.epoch == "E"
    assert seq.offset == 5
    assert seq.take() == []
    assert push(seq, 6) is Verdict.READY


def test_epoch_none_adopts_first_epoch_at_offset_1() -> None:
    """Without an epoch the first one seen is adopted; another one later is RESET."""
    seq = Sequencer(None, 0)
    assert push(seq, 1, epoch="E1") is Verdict.READY
    assert seq.epoch == "E1"
    assert push(seq, 2, epoch="E2") is Verdict.RESET
    assert seq.take() == [ev(1)]


@pytest.mark.parametrize(
    ("start", "offset", "verdict"), [(10, 11, Verdict.READY), (0, 4, Verdict.GAP)]
)
def test_epoch_none_adopts_first_epoch_at_any_offset(
    start: int, offset: int, verdict: Verdict
) -> None:
    """Without an epoch the first one seen is adopted even when history began unseen."""
    seq = Sequencer(None, start)
    assert push(seq, offset, epoch="E1") is verdict
    assert seq.epoch == "E1"
    assert push(seq, offset + 1, epoch="E2") is Verdict.RESET


def test_behind() -> None:
    """behind(head) gives (offset, head) when head is past the offset, else None."""
    seq = Sequencer("E", 5)
    assert seq.behind(5) is None
    assert seq.behind(3) is None
    assert seq.gap is None
    assert seq.behind(8) == (5, 8)
    assert seq.gap == (5, 8)
    assert seq.behind(9) is None  # a gap is already being fetched
    assert seq.fill([ev(6), ev(7), ev(8)]) is True
    assert seq.take() == [ev(6), ev(7), ev(8)]
    assert seq.gap is None
    assert seq.behind(8) is None


def test_behind_while_push_gap_pending() -> None:
    """behind() does not replace a gap opened by push()."""
    seq = Sequencer("E", 0)
    push(seq, 3)
    assert seq.behind(10) is None
    assert seq.gap == (0, 2)


def test_fill_short_of_behind_gap_returns_false() -> None:
    """A fill that stops short of the head behind() reported is not a complete fill."""
    seq = Sequencer("E", 3)
    assert seq.behind(10) == (3, 10)
    assert seq.fill([ev(4), ev(5)]) is False


def test_too_many_held_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_HELD events held behind a gap the sequencer asks for a RESET."""
    monkeypatch.setattr(sequencer, "MAX_HELD", 3)
    seq = Sequencer("E", 0)
    assert push(seq, 2) is Verdict.GAP
    assert [push(seq, o) for o in (3, 4)] == [Verdict.HELD] * 2
    assert push(seq, 5) is Verdict.RESET
    assert push(seq, 6) is Verdict.RESET
    assert push(seq, 4) is Verdict.DUPLICATE  # already held: still not a reset


def test_held_limit_counts_only_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-order events are never counted against MAX_HELD."""
    monkeypatch.setattr(sequencer, "MAX_HELD", 3)
    seq = Sequencer("E", 0)
    assert [push(seq, o) for o in range(1, 21)] == [Verdict.READY] * 20
    assert len(seq.take()) == 20
