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
    """A 2-minute burst gives one 60 s clip (then its level is the new normal); a 1 s
    burst at least 10 s."""
    det = Detector()
    rng = random.Random(5)
    quiet(det, 0, 60, rng)
    burst(det, 60, 120, comments=8, likes=20)
    quiet(det, 180, 300, rng)
    burst(det, 300, 1, comments=40, likes=80)
    quiet(det, 301, 400, rng)
    found = run(det, 400)
    assert len(found) == 2 and round(found[0].duration) == 60
    assert 10 <= found[1].duration <= 15


def test_a_moment_in_the_first_seconds_is_found() -> None:
    """The baseline is a true median from the first seconds: a burst at 15 s is a clip."""
    det = Detector()
    rng = random.Random(7)
    quiet(det, 0, 15, rng)
    burst(det, 15, 4, comments=4, likes=4)
    quiet(det, 19, 120, rng)
    found = run(det, 120)
    assert [h.kind for h in found] == [HighlightKind.BURST]
    assert found[0].start <= 15 <= found[0].end and 15 <= (found[0].peak or 0) < 19


def test_a_young_baseline_catches_up_with_the_room() -> None:
    """A few arrivals in the first seconds, the room's chatter begins at 10 s: the young
    baseline learns the new level instead of holding one burst open for a minute (a
    minute-long clip, then that burst learned as the room's normal)."""
    det = Detector()
    rng = random.Random(11)

    def chatter(start: int, end: int) -> None:
        for t in range(start, end):
            det.add(Signal.COMMENT, t + 0.5, rng.randint(2, 4))
            det.add(Signal.LIKE, t + 0.5, rng.randint(1, 3))

    for t in range(10):
        det.add(Signal.ARRIVAL, t + 0.5, rng.randint(0, 2))
    chatter(10, 150)
    found = run(det, 150)
    assert all(h.duration < 40 for h in found), [(h.start, h.end) for h in found]


def test_moments_seconds_apart_make_two_clips() -> None:
    """A second burst 8 s after the first one's clip is its own clip, trimmed to begin
    where the first ends (it used to be dropped for being too close)."""
    det = Detector()
    rng = random.Random(8)
    quiet(det, 0, 100, rng)
    burst(det, 100, 4, comments=6, likes=6)
    quiet(det, 104, 118, rng)
    burst(det, 118, 4, comments=6, likes=6)
    quiet(det, 122, 200, rng)
    found = run(det, 200)
    assert [h.kind for h in found] == [HighlightKind.BURST, HighlightKind.BURST]
    first, second = found
    assert second.start >= first.end and second.end >= 118
    assert second.duration >= det.p.min_trimmed_s


def test_peak_is_where_the_audience_reacted() -> None:
    """``peak`` is the busiest second of the burst itself, not shifted back before it."""
    det = Detector()
    rng = random.Random(9)
    quiet(det, 0, 100, rng)
    burst(det, 100, 2, comments=4, likes=4)
    burst(det, 102, 1, comments=12, likes=12)
    burst(det, 103, 3, comments=4, likes=4)
    quiet(det, 106, 200, rng)
    (h,) = run(det, 200)
    assert h.peak == 102
    assert h.start < 100 < h.end


def test_a_swell_is_clipped_to_its_top() -> None:
    """Interest rising for 20 s then falling: the clip runs to the top, not cut while rising."""
    det = Detector()
    rng = random.Random(10)
    quiet(det, 0, 100, rng)
    for i in range(20):
        burst(det, 100 + i, 1, comments=1 + i // 3, likes=i // 4)
    quiet(det, 120, 200, rng)
    found = run(det, 200)
    assert len(found) == 1
    assert found[0].end >= 120 - det.p.reaction_delay_s + det.p.tail_s - 1


def test_explanation_segments() -> None:
    """讲解 runs from the tap to the next tap, its end or an unpin; short ones are not clips."""
    det = Detector()
    det.explain("apple", 10)
    det.explain("pear", 40)
    det.explain(None, 41)
    det.explain("plum", 50)
    det.product_pinned(None, 80)
    found = run(det, 90)
    got = [(h.kind, h.product, h.start, h.end) for h in found]
    assert got == [
        (HighlightKind.EXPLAIN, "apple", 10, 40),
        (HighlightKind.EXPLAIN, "plum", 50, 80),
    ]


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


def test_explanations_are_capped_per_live_and_end_with_the_stream() -> None:
    """At most ``max_explain`` per stream, apart from the other caps; the stream's end
    closes the open one."""
    det = Detector()
    for i in range(25):
        det.explain(f"p{i}", i * 10)
    last = det.end(250)
    kinds = [h for h in det.chosen if h.kind is HighlightKind.EXPLAIN]
    assert len(kinds) == det.p.max_explain == 20
    assert last == [] or all(h.kind is HighlightKind.EXPLAIN for h in last)
    det2 = Detector()
    det2.explain("fig", 100)
    assert [(h.product, h.start, h.end) for h in det2.end(130)] == [("fig", 100, 130)]


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


def test_a_short_burst_kept_at_min_len_is_not_dropped_as_trimmed() -> None:
    """With a clip length under ``min_trimmed_s``, a burst that overlaps no earlier clip
    keeps its ``min_len_s`` window (the seconds of a failed CI run: 40, 32, 8 comments)."""
    params = DetectorParams(baseline_s=5, warmup_s=1, quiet_s=1, reaction_delay_s=1,
                            lead_s=1, tail_s=1, min_len_s=3)  # fmt: skip
    assert params.min_len_s < params.min_trimmed_s
    det = Detector(params)
    for t, comments in enumerate((0, 1, 2, 2)):
        det.add(Signal.COMMENT, t + 0.5, comments)
    for t, (comments, likes) in enumerate(((40, 100), (32, 80), (8, 20)), start=4):
        det.add(Signal.COMMENT, t + 0.5, comments)
        det.add(Signal.LIKE, t + 0.5, likes)
    got = run(det, 12)
    assert [(h.kind, h.start, h.end) for h in got] == [(HighlightKind.BURST, 2.0, 6.0)]
