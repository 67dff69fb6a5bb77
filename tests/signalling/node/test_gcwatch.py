"""The garbage collector's pauses on /metrics and the idle young collection."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram

from signalling.node.gcwatch import GcWatch, IdleCollector


@pytest.fixture
def young_threshold() -> Iterator[int]:
    """The nodes' thresholds (signalling.server), restored after the test."""
    saved = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield 50_000
    finally:
        gc.set_threshold(*saved)


def _pauses() -> Histogram:
    return Histogram("t_gc_pause_seconds", "test", ["generation"], registry=CollectorRegistry())


def _observed(pauses: Histogram, generation: int) -> float:
    for metric in pauses.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {"generation": str(generation)}:
                return sample.value
    return 0.0


def _young(n: int) -> list[list[object]]:
    """``n`` new tracked containers (net allocations count toward the young threshold)."""
    return [[] for _ in range(n)]


def test_every_collection_is_timed_by_generation(caplog: pytest.LogCaptureFixture) -> None:
    pauses = _pauses()
    watch = GcWatch(pauses, log_ms=0.0)
    watch.start()
    try:
        with caplog.at_level(logging.WARNING, logger="livecore.gc"):
            gc.collect(1)
            gc.collect(2)
    finally:
        watch.stop()
    gc.collect(1)  # stopped: no longer observed
    assert _observed(pauses, 1) == 1
    assert _observed(pauses, 2) == 1
    assert [r.getMessage().split(" paused")[0] for r in caplog.records] == [
        "gc: generation 1",
        "gc: generation 2",
    ]


def test_a_short_pause_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    watch = GcWatch(_pauses(), log_ms=60_000.0)
    watch.start()
    try:
        with caplog.at_level(logging.WARNING, logger="livecore.gc"):
            gc.collect(0)
    finally:
        watch.stop()
    assert not caplog.records


def test_an_idle_tick_collects_a_half_due_young_generation(young_threshold: int) -> None:
    gc.collect()
    kept = _young(young_threshold * 6 // 10)
    assert gc.get_count()[0] >= young_threshold // 2
    idle = IdleCollector()
    idle.tick(0.0)
    assert idle.collections == 1
    assert gc.get_count()[0] < young_threshold // 10
    del kept


def test_a_late_tick_or_a_young_generation_under_half_is_left(young_threshold: int) -> None:
    gc.collect()
    kept = _young(young_threshold * 6 // 10)
    idle = IdleCollector()
    idle.tick(0.05)  # the loop is busy: the collection waits for a quiet tick
    assert idle.collections == 0
    assert gc.get_count()[0] >= young_threshold // 2
    gc.collect()
    kept += _young(young_threshold // 10)
    idle.tick(0.0)  # idle, but the young generation has room
    assert idle.collections == 0
    del kept
