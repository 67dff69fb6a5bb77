"""The highlight detector on synthetic per-second signals (no clock, no I/O)."""

from __future__ import annotations

import random

import pytest

from livecore.highlights import Detector, DetectorParams, HighlightKind, Signal


def quiet(det: Detector, start: int, end: int, rng: random.Random, rate: float = 1.0) -> None:
    """Background chatter: Poisson-ish comments and likes every second."""
    for t in range(start, end):
        det.add(Signal.COMMENT, t + 0.5, int(rng.random() < rate * 0.5) + int(rng.random() < 0.3))
        det.add(Signal.LIKE, t + 0.5, rng.randint(0, 3))


def burst(det: Detector, start: int, seconds: int, comments: int = 12, likes: int = 30) -> None:
    for t in range(start, start + seconds):
        det.add(Signal.COMMENT, t + 0.2, comments)
        det.add(Signal.LIKE, t + 0.4, likes)


def run(det: Detector, until: int) -> list:  # type: ignore[type-arg]
    out = []
    for t in range(until + 1):
        out += det.advance(t)
    return out


def test_quiet_stream_has_no_highlight() -> None:
    """Background noise alone never crosses the threshold."""
    det = Detector()
    quiet(det, 0, 600, random.Random(1))
    assert run(det, 600) == []


def test_burst_is_found_shifted_back_by_the_reaction_delay() -> None:
    """A 6 s burst at 120 s gives one highlight that starts before the burst."""
    det = Detector(DetectorParams(reaction_delay_s=5))
    rng = random.Random(2)
    quiet(det, 0, 120, rng)
    burst(det, 120, 6)
    quiet(det, 126, 200, rng)
    found = run(det, 200)
    assert len(found) == 1
    h = found[0]
    assert h.kind is HighlightKind.BURST
    assert h.start <= 120 - 5 and h.end >= 120
    assert 10 <= h.duration <= 60
    assert h.signals["comment"] >= 6 * 12
    assert h.score >= 3
    assert h.reason()["kind"] == "burst"


def test_decided_seconds_after_the_window_closes() -> None:
    """Live: the decision comes a few seconds after the burst, not at the stream's end."""
    det = Detector()
    rng = random.Random(3)
    quiet(det, 0, 100, rng)
    burst(det, 100, 5)
    decided_at = None
    for t in range(100, 130):
        if t >= 105:
            quiet(det, t, t + 1, rng)
        if det.advance(t):
            decided_at = t
            break
    assert decided_at is not None and decided_at <= 105 + det.p.quiet_s + 2
    h = det.chosen[0]
    assert h.decided_at - h.end <= det.p.quiet_s + 1


def test_nearby_peaks_merge() -> None:
    """Two bursts 2 s apart are one highlight; 60 s apart, two."""
    det = Detector()
    rng = random.Random(4)
    quiet(det, 0, 100, rng)
    burst(det, 100, 4)
    burst(det, 106, 4)
    quiet(det, 110, 170, rng)
    burst(det, 170, 4)
    quiet(det, 174, 240, rng)
    found = run(det, 240)
    assert len(found) == 2


def test_length_is_clamped() -> None:
    """A 2-minute burst gives at most 60 s; a 1 s burst at least 10 s."""
    det = Detector()
    rng = random.Random(5)
    quiet(det, 0, 60, rng)
    burst(det, 60, 120, comments=8, likes=20)
    quiet(det, 180, 300, rng)
    burst(det, 300, 1, comments=40, likes=80)
    quiet(det, 301, 400, rng)
    found = run(det, 400)
    assert [round(h.duration) for h in found] == [60, 10] or all(
        10 <= h.duration <= 60 for h in found
    )
    assert all(10 <= h.duration <= 60 for h in found) and len(found) == 2


def test_mark_and_product_segments() -> None:
    """A host mark and the span between two product pins become highlights."""
    det = Detector()
    det.product_pinned("apple", 20)
    det.mark(50)
    det.product_pinned("pear", 70)
    found = run(det, 80)
    kinds = {(h.kind, h.product) for h in found}
    assert (HighlightKind.MARK, "apple") in kinds
    assert (HighlightKind.PRODUCT, "apple") in kinds
    product = next(h for h in found if h.kind is HighlightKind.PRODUCT)
    assert (product.start, product.end) == (20, 70)
    mark = next(h for h in found if h.kind is HighlightKind.MARK)
    assert mark.start == 25 and mark.end == 55 and mark.decided_at == 55


def test_long_product_segment_is_decided_at_max_length() -> None:
    """A product pinned for 5 minutes yields its first 60 s without waiting for the next pin."""
    det = Detector()
    det.product_pinned("rice", 10)
    found = run(det, 75)
    assert [(h.start, h.end) for h in found] == [(10, 70)]
    assert det.end(300) == []


def test_short_pin_is_not_a_highlight() -> None:
    det = Detector()
    det.product_pinned("a", 10)
    det.product_pinned("b", 15)
    assert [h for h in run(det, 16) if h.product == "a"] == []


def test_caps_per_stream_and_product() -> None:
    """At most 3 per product and 20 per stream."""
    det = Detector()
    for i in range(10):
        det.product_pinned("same", i * 100)
        det.mark(i * 100 + 50)
    run(det, 1000)
    assert sum(1 for h in det.chosen if h.product == "same") == 3
    det2 = Detector()
    for i in range(40):
        det2.product_pinned(f"p{i}", i * 20)
        det2.mark(i * 20 + 15)
    run(det2, 900)
    assert len(det2.chosen) == 20


def test_minimum_spacing_between_detected_highlights() -> None:
    """A burst right after a mark's window is dropped (spacing), one far away is kept."""
    det = Detector(DetectorParams(min_spacing_s=30))
    rng = random.Random(6)
    quiet(det, 0, 100, rng)
    det.mark(100)
    burst(det, 115, 3)
    quiet(det, 118, 300, rng)
    found = run(det, 300)
    assert [h.kind for h in found] == [HighlightKind.MARK]


def test_end_closes_the_open_product() -> None:
    det = Detector()
    det.product_pinned("egg", 5)
    run(det, 30)
    last = det.end(30)
    assert [(h.kind, h.start, h.end) for h in last] == [(HighlightKind.PRODUCT, 5, 30)]


def test_bad_params_refused() -> None:
    with pytest.raises(ValueError):
        DetectorParams(min_len_s=70, max_len_s=60)
    with pytest.raises(ValueError):
        Detector().add("nonsense", 1)


def test_product_segment_does_not_push_a_burst_away() -> None:
    """A burst inside a product's explanation segment is its own highlight (same product)."""
    det = Detector()
    rng = random.Random(7)
    quiet(det, 0, 100, rng)
    det.product_pinned("水蜜桃", 100)
    quiet(det, 100, 130, rng)
    burst(det, 130, 5)
    quiet(det, 135, 240, rng)
    kinds = {h.kind: h for h in run(det, 240)}
    assert set(kinds) == {HighlightKind.PRODUCT, HighlightKind.BURST}
    product, hit = kinds[HighlightKind.PRODUCT], kinds[HighlightKind.BURST]
    assert product.start < hit.end and hit.start < product.end
    assert hit.product == "水蜜桃"


def test_a_steady_ramp_does_not_become_one_long_burst() -> None:
    """An audience that grows for a minute, then two reactions: two bursts, not one merged."""
    det = Detector()
    rng = random.Random(8)
    for t in range(0, 60):  # the stream's start: chatter grows from nothing
        det.add(Signal.COMMENT, t + 0.5, int(rng.random() < t / 60 * 2))
        det.add(Signal.ARRIVAL, t + 0.5, int(rng.random() < 0.5))
    quiet(det, 60, 100, rng, rate=2.0)
    burst(det, 100, 5)
    quiet(det, 105, 160, rng, rate=2.0)
    burst(det, 160, 5)
    quiet(det, 165, 240, rng, rate=2.0)
    found = [h for h in run(det, 240) if h.kind is HighlightKind.BURST]
    assert len(found) == 2
    assert found[0].start < 100 < found[0].end and found[1].start < 160 < found[1].end
