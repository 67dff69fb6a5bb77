"""Cutting a fragmented MP4 byte stream into init, segments and the playlist."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from media.recorder import RecorderStats
from media.segments import (
    INIT_NAME,
    PLAYLIST_NAME,
    Segment,
    SegmentWriter,
    playlist,
    segment_name,
    stream_files,
)


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def fragment(start_90k: int, payload: bytes = b"frames") -> bytes:
    """One ``moof`` (track 1 starting at ``start_90k``) and its ``mdat``."""
    tfhd = box(b"tfhd", b"\x00\x02\x00\x00" + struct.pack(">I", 1))
    tfdt = box(b"tfdt", b"\x01\x00\x00\x00" + struct.pack(">Q", start_90k))
    moof = box(b"moof", box(b"mfhd", b"\0" * 8) + box(b"traf", tfhd + tfdt))
    return moof + box(b"mdat", payload)


INIT = box(b"ftyp", b"isom") + box(b"moov", b"m" * 20)


def test_playlist_lists_segments_with_the_init_map() -> None:
    """An fMP4 HLS playlist: target duration rounded up, media sequence, map, end list."""
    segs = [Segment(4, 8.0, 2.0, segment_name(4), 10), Segment(5, 10.0, 2.5, segment_name(5), 10)]
    text = playlist(segs, ended=True, prefix="s1/")
    assert text.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:3",
        "#EXT-X-MEDIA-SEQUENCE:4",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="s1/init.mp4"',
        "#EXTINF:2.000,",
        "s1/seg000004.m4s",
        "#EXTINF:2.500,",
        "s1/seg000005.m4s",
        "#EXT-X-ENDLIST",
    ]
    assert "#EXT-X-ENDLIST" not in playlist(segs, ended=False)


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
    assert (stats.segments, stats.bytes_written) == (2, len(first) + len(second))
    assert "#EXT-X-ENDLIST" not in (tmp_path / PLAYLIST_NAME).read_text()
    writer.close(last_video_pts=180000 + 2 * 3000)
    last = published[-1]  # one frame (30 fps) past the last video frame
    assert (last.index, last.start, last.name, last.size) == (1, 2.0, segment_name(1), len(second))
    assert last.duration == pytest.approx(3 * 3000 / 90000)
    assert b"".join(p.read_bytes() for p in stream_files(tmp_path)) == INIT + first + second
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [INIT_NAME, PLAYLIST_NAME, segment_name(0), segment_name(1)]
    )
    text = (tmp_path / PLAYLIST_NAME).read_text()
    assert text.endswith("#EXT-X-ENDLIST\n") and f"{tmp_path.name}/seg000001.m4s" in text


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
    assert names == [segment_name(i) for i in range(2, 6)]
    assert "seg000001" not in (tmp_path / PLAYLIST_NAME).read_text()
    assert [p.name for p in stream_files(tmp_path)][1:] == [segment_name(i) for i in range(6)]
    assert writer.drop_archived() == 2 * len(fragment(0))
    assert not (tmp_path / segment_name(1)).exists() and (tmp_path / segment_name(2)).exists()
    assert writer.drop_archived() == 0
    writer.close(last_video_pts=None)

    lean = tmp_path / "lean"
    lean.mkdir()
    writer = SegmentWriter(lean, window_s=5, counters=RecorderStats(), archive=False)
    sink = writer.begin()
    sink.write(INIT)
    for i in range(6):
        sink.write(fragment(i * 2 * 90000))
    assert [p.name for p in stream_files(lean)][1:] == [segment_name(i) for i in range(2, 6)]


def test_trim_shrinks_the_window_to_what_clips_need(tmp_path: Path) -> None:
    """Under disk pressure the live window is cut back to the last ``keep_s`` seconds:
    archived segments and the older window go from disk, the playlist follows."""
    writer = SegmentWriter(tmp_path, window_s=10, counters=RecorderStats())
    sink = writer.begin()
    sink.write(INIT)
    for i in range(12):
        sink.write(fragment(i * 2 * 90000))
    size = len(fragment(0))
    # window 10 s: segments 5..11 listed (11 still open), 0..4 archived
    assert [s.index for s in writer.segments()] == list(range(5, 12))
    freed = writer.trim(4.0)
    assert [s.index for s in writer.segments()] == [8, 9, 10, 11]
    assert freed == 8 * size
    assert [p.name for p in stream_files(tmp_path)][1:] == [segment_name(i) for i in range(8, 12)]
    sink.write(fragment(12 * 2 * 90000))
    assert "seg000007" not in (tmp_path / PLAYLIST_NAME).read_text()
    assert writer.trim(4.0) == size  # segment 8 is now older than 4 s before the edge
