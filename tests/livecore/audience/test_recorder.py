"""The trace recorder: anonymised, text reduced to length, bounded in size and time."""

from __future__ import annotations

from pathlib import Path

from livecore.audience.recorder import TraceRecorder
from livecore.audience.trace import HOST, Kind, read_trace
from livecore.clock import ManualClock


def test_records_anonymously(tmp_path: Path) -> None:
    """No user id or comment text reaches the file; clients and communities are numbers."""
    clock = ManualClock()
    rec = TraceRecorder(tmp_path, "room-1", clock=clock)
    rec.record(Kind.JOIN, "alice-uid-123", community="Sunny Garden")
    clock.advance(1.25)
    rec.record(Kind.COMMENT, "alice-uid-123", community="Sunny Garden", text="这个多少钱")
    rec.record(Kind.PRODUCT_PIN, "the-host", host=True, value=3990)
    rec.record(Kind.JOIN, "bob-uid-9")
    [path] = rec.close()
    raw = path.read_bytes()
    trace = read_trace(path)
    assert [(e.t_ms, e.client, e.kind, e.community, e.value) for e in trace.events] == [
        (0, 1, Kind.JOIN, 0, 0), (1250, 1, Kind.COMMENT, 0, 5),
        (1250, HOST, Kind.PRODUCT_PIN, -1, 3990), (1250, 2, Kind.JOIN, -1, 0)]  # fmt: skip
    assert trace.source == "recorded" and trace.communities == ["Sunny Garden"]
    import gzip

    plain = gzip.decompress(raw)
    assert b"alice" not in plain and "这个".encode() not in plain


def test_keeps_text_only_when_asked(tmp_path: Path) -> None:
    """With the operator's opt-in the comment text is kept."""
    rec = TraceRecorder(tmp_path, "r", clock=ManualClock(), keep_text=True)
    rec.record(Kind.JOIN, "u")
    rec.record(Kind.COMMENT, "u", text="hello")
    [path] = rec.close()
    assert read_trace(path).events[-1].value == "hello"


def test_rotates_and_stops_at_its_bounds(tmp_path: Path) -> None:
    """Files rotate at max_events and max_seconds; past max_files events are dropped."""
    clock = ManualClock()
    rec = TraceRecorder(tmp_path, "r", clock=clock, max_events=3, max_seconds=60, max_files=2)
    for _ in range(3):
        rec.record(Kind.LIKE, "u", value=1)
    assert len(rec.files) == 1  # rotated at 3 events
    rec.record(Kind.LIKE, "u", value=2)
    clock.advance(61)
    rec.record(Kind.LIKE, "u", value=3)  # rotated by time: part 2 holds the earlier like
    assert len(rec.files) == 2
    rec.record(Kind.LIKE, "u", value=4)
    assert rec.close() == rec.files and len(rec.files) == 2
    assert rec.dropped == 2
    assert [e.value for e in read_trace(rec.files[1]).events] == [2]
