"""The trace format: round trip, time order, version and format checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgpack
import pytest

from livecore.audience.trace import Event, Kind, Label, Trace, TraceError, read_trace, write_trace


def sample() -> Trace:
    events = [
        Event(0, 1, Kind.JOIN, 0),
        Event(1500, 1, Kind.COMMENT, 0, 12),
        Event(1500, 0, Kind.PRODUCT_PIN, -1, 3990),
        Event(90_000, 1, Kind.LEAVE, 0),
    ]
    return Trace(events, 120.0, ["compound-00"], [Label(1.5, 20.0, "product_pin", 3.2)])


def test_round_trip(tmp_path: Path) -> None:
    """Every field survives a write and a read; labels included."""
    trace = sample()
    back = read_trace(write_trace(tmp_path / "t.lctrace", trace))
    assert back.events == trace.events
    assert back.labels == trace.labels and back.communities == trace.communities
    assert back.duration_s == 120.0 and back.counts() == {"join": 1, "comment": 1,
                                                          "product_pin": 1, "leave": 1}  # fmt: skip


def test_events_out_of_order_are_refused(tmp_path: Path) -> None:
    """Time deltas are unsigned: an event before the previous one is an error."""
    trace = Trace([Event(10, 1, Kind.JOIN), Event(5, 1, Kind.LIKE, -1, 1)], 1.0)
    with pytest.raises(ValueError, match="time order"):
        write_trace(tmp_path / "t.lctrace", trace)


def test_a_newer_version_or_other_file_is_refused(tmp_path: Path) -> None:
    """A reader never guesses: newer versions and foreign files raise TraceError."""
    newer = tmp_path / "newer.lctrace"
    with gzip.open(newer, "wb") as out:
        out.write(msgpack.packb({"format": "livecore-trace", "version": 99, "duration_s": 1}))
    with pytest.raises(TraceError, match="version 99"):
        read_trace(newer)
    junk = tmp_path / "junk.lctrace"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(TraceError):
        read_trace(junk)


def test_reader_bounds_the_event_count(tmp_path: Path) -> None:
    """``max_events`` caps what a reader holds in memory."""
    path = write_trace(tmp_path / "t.lctrace", sample())
    with pytest.raises(TraceError, match="more than 2"):
        read_trace(path, max_events=2)
