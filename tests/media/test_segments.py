"""Cutting a fragmented MP4 byte stream into init, segments and the playlist."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from media.hlsplaylist import parse
from media.recfiles import (
    INIT_NAME,
    PLAYLIST_NAME,
    finalize,
    segment_name,
    stream_files,
    stream_groups,
)
from media.recorder import RecorderStats
from media.segments import Continuation, Segment, SegmentWriter, VideoFormat
from tests.media.hlscheck import strict_check


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def fragment(
    start_90k: int, payload: bytes = b"frames", duration_90k: int = 180000, key: bool = True
) -> bytes:
    """One ``moof`` (track 1: one sample at ``start_90k`` lasting ``duration_90k``, a
    sync sample when ``key``) and its ``mdat``."""
    tfhd = box(b"tfhd", b"\x00\x02\x00\x00" + struct.pack(">I", 1))
    tfdt = box(b"tfdt", b"\x01\x00\x00\x00" + struct.pack(">Q", start_90k))
    flags = 0x02000000 if key else 0x01010000
    trun = box(b"trun", b"\x00\x00\x01\x04" + struct.pack(">III", 1, flags, duration_90k))
    moof = box(b"moof", box(b"mfhd", b"\0" * 8) + box(b"traf", tfhd + tfdt + trun))
    return moof + box(b"mdat", payload)


INIT = box(b"ftyp", b"isom") + box(b"moov", b"m" * 20)


def test_writer_cuts_boxes_into_files_and_publishes_a_segment_when_the_next_begins(
    tmp_path: Path,
) -> None:
    """init.mp4, one file per fragment (no full-length copy beside them: init + the
    segments are the whole stream); durations from the next start."""
    stats = RecorderStats()
    published: list[Segment] = []
    writer = SegmentWriter(tmp_path, window_s=600, counters=stats, on_segment=published.append)
    sink = writer.begin()
    first, second = fragment(0, b"a" * 5), fragment(180000, b"b" * 7)
    for chunk in (INIT[:5], INIT[5:] + first[:3], first[3:], second):
        sink.write(chunk)
    assert (tmp_path / INIT_NAME).read_bytes() == INIT
    assert (tmp_path / segment_name(0)).read_bytes() == first
    assert published == [Segment(0, 0.0, 2.0, segment_name(0), len(first))]
    assert writer.recorded_until == 2.0  # up to where the open segment begins
    assert (stats.segments, stats.bytes_written) == (1, len(first))
    assert "#EXT-X-ENDLIST" not in (tmp_path / PLAYLIST_NAME).read_text()
    writer.close()
    last = published[-1]
    assert (last.index, last.start, last.name, last.size) == (1, 2.0, segment_name(1), len(second))
    assert last.duration == pytest.approx(2.0)
    assert b"".join(p.read_bytes() for p in stream_files(tmp_path)) == INIT + first + second
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [INIT_NAME, PLAYLIST_NAME, "plain.m3u8", segment_name(0), segment_name(1)]
    )  # the parts went with the end
    text = (tmp_path / PLAYLIST_NAME).read_text()
    assert f"{tmp_path.name}/seg000001.m4s" in text
    # Paused, not ended (the host may come back): no parts, no hint, no end list.
    assert "#EXT-X-ENDLIST" not in text and "#EXT-X-PART" not in text and "HINT" not in text
    assert finalize(tmp_path) and not finalize(tmp_path)  # the room ended (once)
    ended = (tmp_path / PLAYLIST_NAME).read_text()
    assert ended == text.replace("seg000001.m4s\n", "seg000001.m4s\n#EXT-X-ENDLIST\n")


def test_segments_leaving_the_window_leave_the_playlist_and_stay_for_the_replay(
    tmp_path: Path,
) -> None:
    """Segments older than the window leave the playlist (two always stay); their files
    stay for the replay until ``drop_archived``; without ``archive`` they go at once."""
    writer = SegmentWriter(tmp_path, window_s=5, counters=RecorderStats())
    sink = writer.begin()
    sink.write(INIT)
    for i in range(6):
        sink.write(fragment(i * 2 * 90000))
    names = [s.name for s in writer.segments()]
    assert names == [segment_name(i) for i in range(1, 5)]  # 5 is still open
    assert "seg000000.m4s" not in (tmp_path / PLAYLIST_NAME).read_text()
    assert [p.name for p in stream_files(tmp_path)][1:] == [segment_name(i) for i in range(5)]
    assert writer.drop_archived() == len(fragment(0))
    assert not (tmp_path / segment_name(0)).exists() and (tmp_path / segment_name(1)).exists()
    assert writer.drop_archived() == 0
    writer.close()

    lean = tmp_path / "lean"
    lean.mkdir()
    writer = SegmentWriter(lean, window_s=5, counters=RecorderStats(), archive=False)
    sink = writer.begin()
    sink.write(INIT)
    for i in range(6):
        sink.write(fragment(i * 2 * 90000))
    assert [p.name for p in stream_files(lean)][1:] == [segment_name(i) for i in range(1, 5)]


def test_trim_shrinks_the_window_to_what_clips_need(tmp_path: Path) -> None:
    """Under disk pressure the live window is cut back to the last ``keep_s`` seconds:
    archived segments and the older window go from disk, the playlist follows."""
    writer = SegmentWriter(tmp_path, window_s=10, counters=RecorderStats())
    sink = writer.begin()
    sink.write(INIT)
    for i in range(12):
        sink.write(fragment(i * 2 * 90000))
    size = len(fragment(0))
    # window 10 s: segments 4..10 listed (11 still open), 0..3 archived
    assert [s.index for s in writer.segments()] == list(range(4, 11))
    freed = writer.trim(4.0)
    assert [s.index for s in writer.segments()] == [7, 8, 9, 10]
    assert freed == 7 * size
    assert [p.name for p in stream_files(tmp_path)][1:] == [segment_name(i) for i in range(7, 11)]
    sink.write(fragment(12 * 2 * 90000))
    assert "seg000006.m4s" not in (tmp_path / PLAYLIST_NAME).read_text()
    assert writer.trim(4.0) == size  # segment 7 is now older than 4 s before the edge


HALF = 45000  # half a second at 90 kHz


def parts(sink: object, start_s: float, seconds: float, gop_s: float | None) -> None:
    """Half-second fragments from ``start_s`` for ``seconds``, a keyframe every ``gop_s``."""
    write = sink.write  # type: ignore[attr-defined]
    n0, steps = round(start_s * 2), round(seconds * 2)
    for n in range(n0, n0 + steps):
        key = gop_s is not None and (n * 0.5) % gop_s == 0
        write(fragment(n * HALF, b"p" * 100, HALF, key))


def test_parts_segments_and_the_low_latency_playlist(tmp_path: Path) -> None:
    """Half-second parts, two-second segments on keyframes, a fixed target duration, the
    open segment's parts, a preload hint; a master playlist from the layer's format."""
    writer = SegmentWriter(tmp_path, window_s=600, counters=RecorderStats(), segment_s=2.0)
    writer.epoch = 1_800_000_000.0
    sink = writer.begin(video=VideoFormat(640, 360, "avc1.42e01f"))
    sink.write(INIT)
    parts(sink, 0, 9.0, 2.0)
    text = (tmp_path / PLAYLIST_NAME).read_text()
    pl = strict_check(text)
    assert pl.target == 3 and pl.part_target == 0.5
    assert [e.duration for e in pl.entries if e.complete] == [2.0] * 4
    assert "#EXT-X-PRELOAD-HINT:TYPE=PART" in text and "INDEPENDENT=YES" in text
    assert "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00.000Z" in text
    assert not pl.entries[-1].complete and len(pl.entries[-1].parts) == 2
    master = (tmp_path / "master.m3u8").read_text()
    assert 'CODECS="avc1.42e01f",RESOLUTION=640x360' in master and "index.m3u8" in master
    assert "FRAME-RATE=2.000" in master  # one sample per half-second part


def test_a_long_gop_is_cut_on_parts_within_the_target(tmp_path: Path) -> None:
    """A publisher whose keyframes come every 8 s: segments end on parts so that none
    passes the target duration; they say they are not independent."""
    writer = SegmentWriter(tmp_path, window_s=600, counters=RecorderStats(), segment_s=2.0)
    sink = writer.begin()
    sink.write(INIT)
    parts(sink, 0, 17.0, 8.0)
    pl = strict_check((tmp_path / PLAYLIST_NAME).read_text())
    assert all(e.duration <= 3.0 for e in pl.entries)
    assert not all(e.independent for e in pl.entries)
    assert "#EXT-X-INDEPENDENT-SEGMENTS" not in (tmp_path / PLAYLIST_NAME).read_text()


def test_a_republished_stream_continues_the_sequence_after_a_discontinuity(
    tmp_path: Path,
) -> None:
    """The next stream of a room numbers on from the previous playlist, lists it before
    an EXT-X-DISCONTINUITY, and counts that discontinuity once it slides out."""
    first_dir, second_dir = tmp_path / "0000000001-aaaaaa", tmp_path / "0000000002-bbbbbb"
    first_dir.mkdir(), second_dir.mkdir()
    first = SegmentWriter(first_dir, window_s=10, counters=RecorderStats())
    sink = first.begin()
    sink.write(INIT)
    parts(sink, 0, 8.0, 2.0)
    first.close()
    before = parse((first_dir / PLAYLIST_NAME).read_text())
    second = SegmentWriter(second_dir, window_s=10, counters=RecorderStats(),
                           continuation=Continuation.after(before))  # fmt: skip
    sink = second.begin()
    sink.write(INIT)
    parts(sink, 0, 4.5, 2.0)
    text = (second_dir / PLAYLIST_NAME).read_text()
    after = strict_check(text, previous=before)
    msns = [e.msn for e in after.entries]
    assert msns == list(range(msns[0], msns[0] + len(msns)))  # one sequence, no restart
    new = [e for e in after.entries if e.uri.startswith(second_dir.name) or not e.complete]
    assert new[0].discontinuity and new[0].msn == before.entries[-1].msn + 1
    assert new[0].map_uri == f"{second_dir.name}/init.mp4"
    assert after.discontinuity_seq == 0
    parts(sink, 4.5, 12.0, 2.0)  # the first stream slides out of the 10 s window
    later = strict_check((second_dir / PLAYLIST_NAME).read_text(), previous=after)
    assert later.discontinuity_seq == 1
    assert all(e.uri.startswith(second_dir.name) for e in later.entries if e.complete)
    assert not any(e.discontinuity for e in later.entries)


def test_a_new_init_segment_follows_a_discontinuity(tmp_path: Path) -> None:
    """A second muxer (new SPS/PPS): init-1.mp4, the open segment ends, EXT-X-MAP changes
    after a discontinuity; the replay reads each init with its own segments."""
    writer = SegmentWriter(tmp_path, window_s=600, counters=RecorderStats())
    sink = writer.begin()
    sink.write(INIT)
    parts(sink, 0, 3.0, 2.0)
    sink = writer.begin(first_s=3.0)
    sink.write(INIT)
    parts(sink, 0, 4.5, 2.0)  # the new muxer's timestamps start at 0 again
    text = (tmp_path / PLAYLIST_NAME).read_text()
    pl = strict_check(text)
    switch = next(e for e in pl.entries if e.map_uri.endswith("init-1.mp4"))
    assert switch.discontinuity and switch.msn == 2
    assert [s.start for s in writer.segments()] == [0.0, 2.0, 3.0, 5.0]
    groups = stream_groups(tmp_path)
    assert [[p.name for p in g] for g in groups] == [
        [INIT_NAME, segment_name(0), segment_name(1)],
        ["init-1.mp4", segment_name(2), segment_name(3)],
    ]


def test_a_part_past_the_target_is_never_listed(tmp_path: Path) -> None:
    """Frames stalled inside a part (0.65 s against a 0.5 s target): its segment is not
    offered part by part while open, and listed whole, without parts, once complete;
    every playlist on the way passes the strict check."""
    writer = SegmentWriter(tmp_path, window_s=600, counters=RecorderStats(), segment_s=2.0)
    sink = writer.begin()
    sink.write(INIT)
    sink.write(fragment(0, b"p" * 100, HALF, True))
    stalled = round(0.65 * 90000)
    sink.write(fragment(HALF, b"p" * 100, stalled, False))
    text = (tmp_path / PLAYLIST_NAME).read_text()
    strict_check(text)
    assert "#EXT-X-PART:" not in text and 'URI="' in text  # only the hint (and the map)
    at = HALF + stalled
    for n in range(3):
        sink.write(fragment(at + n * HALF, b"p" * 100, HALF, n == 2))
    pl = strict_check((tmp_path / PLAYLIST_NAME).read_text())
    first = pl.entries[0]
    assert first.complete and first.parts == () and abs(first.duration - 2.15) < 0.01
    assert not pl.entries[-1].complete and len(pl.entries[-1].parts) == 1
