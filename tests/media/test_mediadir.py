"""Media directory rules: names that cannot leave it, and the disk budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from media.mediadir import ACTIVE_S, MediaDir, prune, tree_size
from media.recorder import RecorderStats
from media.segments import SegmentWriter
from tests.media.test_segments import INIT, fragment

NOW = 1_800_000_000.0


def fill(path: Path, size: int, age: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    os.utime(path, (age, age))
    os.utime(path.parent, (age, age))
    return path


def test_names_cannot_leave_the_media_directory(tmp_path: Path) -> None:
    media = MediaDir(tmp_path / "m")
    stream = media.new_stream_dir("r1", 1_700_000_000)
    (stream / "init.mp4").write_bytes(b"x")
    (tmp_path / "secret").write_text("no")
    assert media.segment_file("r1", stream.name, "init.mp4") == stream / "init.mp4"
    assert media.latest_stream("r1") == stream
    for room, s, name in [
        ("r1", stream.name, "../../../secret"),
        ("r1", stream.name, "index.mp4"),
        ("..", stream.name, "init.mp4"),
        ("r1", "..", "init.mp4"),
        ("r1", "../../x", "init.mp4"),
    ]:
        assert media.segment_file(room, s, name) is None
    assert media.latest_stream("../..") is None
    for bad in ("../x", "r1/../../x", ""):
        with pytest.raises(ValueError):
            media.replay_path(bad)
    with pytest.raises(ValueError):
        media.clip_path("r1", "../../secret", "mp4")
    with pytest.raises(ValueError):
        media.clip_path("r1", "0123456789ab", "txt")


def live_recording(media: MediaDir, room: str, segments: int) -> SegmentWriter:
    """A real segment writer fed ``segments`` 2 s fragments (window 10 s)."""
    writer = SegmentWriter(media.new_stream_dir(room, NOW), window_s=10, counters=RecorderStats())
    sink = writer.begin()
    sink.write(INIT)
    for i in range(segments):
        sink.write(fragment(i * 2 * 90000, b"x" * 1000))
    return writer


def test_disk_budget_prunes_oldest_ended_recordings_first(tmp_path: Path) -> None:
    """Ended recordings go first (oldest first), then replays and clips; live ones stay."""
    media = MediaDir(tmp_path / "m")
    old = media.new_stream_dir("a", 1_700_000_000)
    newer = media.new_stream_dir("b", 1_700_000_100)
    live = media.new_stream_dir("c", 1_700_000_200)
    fill(old / "seg000000.m4s", 1000, 1000)
    fill(newer / "seg000000.m4s", 1000, 2000)
    fill(live / "seg000000.m4s", 1000, 500)
    fill(media.replay_path("a"), 1000, 3000)
    fill(media.clip_path("a", "0123456789ab", "mp4"), 1000, 2500)
    fill(media.clip_path("a", "0123456789ab", "jpg"), 10, 2500)
    assert tree_size(media.root) == 5010
    writer = SegmentWriter(live, window_s=10, counters=RecorderStats())

    result = prune(media, 4100, [writer], now=NOW)
    assert result.recordings == [old] and not result.over_budget
    assert newer.exists() and live.exists()

    result = prune(media, 1500, [writer], now=NOW)
    assert result.recordings == [newer]
    assert result.clips == [("a", "0123456789ab")]  # older than the replay
    assert result.replays == ["a"]
    assert live.exists() and tree_size(media.root) == 1000

    result = prune(media, 10, [writer], now=NOW)
    assert result.over_budget and live.exists()


def test_live_recordings_count_against_the_budget(tmp_path: Path) -> None:
    """After ended recordings, a live recording gives up the segments kept only for its
    replay, then (after replays and clips) its window beyond what clips reach back; a
    replay being built keeps its recording."""
    media = MediaDir(tmp_path / "m")
    building = media.new_stream_dir("b", 1_700_000_000)
    fill(building / "seg000000.m4s", 5000, 1000)
    live = live_recording(media, "a", 20)  # 0..11 archived, 12..18 in the window, 19 open
    seg = len(fragment(0, b"x" * 1000))
    fill(media.clip_path("a", "0123456789ab", "mp4"), 1000, 2500)
    total = tree_size(media.root)

    result = prune(media, total - 1, [live], keep=[building], clip_reach_s=4, now=NOW)
    assert result.recordings == [] and building.exists()
    assert result.freed == 12 * seg and result.clips == [] and result.trimmed == []
    assert [s.index for s in live.segments()] == list(range(12, 19))
    assert (live.dir / "seg000012.m4s").exists() and not (live.dir / "seg000011.m4s").exists()

    result = prune(media, tree_size(media.root) - 1, [live], keep=[building], clip_reach_s=4,
                   now=NOW)  # fmt: skip
    assert result.clips == [("a", "0123456789ab")] and result.trimmed == []

    result = prune(media, 0, [live], keep=[building], clip_reach_s=4, now=NOW)
    assert result.trimmed == [live.dir] and result.over_budget
    assert [s.index for s in live.segments()] == [15, 16, 17, 18]
    assert building.exists()


def test_object_storage_keeps_finished_media_until_uploaded(tmp_path: Path) -> None:
    """With object storage on, a local replay or clip is still to be uploaded: the
    budget never deletes it (it leaves the disk once it is in the bucket)."""
    media = MediaDir(tmp_path / "m")
    fill(media.replay_path("a"), 1000, 3000)
    fill(media.clip_path("a", "0123456789ab", "mp4"), 1000, 2500)
    result = prune(media, 0, [], keep_finished=True, now=NOW)
    assert result.over_budget and (result.replays, result.clips) == ([], [])
    assert media.replay_path("a").exists()


def test_a_recording_written_a_moment_ago_is_live_on_another_node(tmp_path: Path) -> None:
    """On a media directory shared by several nodes, a recording that is not live on this
    node but was written within ACTIVE_S is another node's live one: it stays; an old one
    that is not live anywhere goes."""
    media = MediaDir(tmp_path / "m")
    elsewhere = media.new_stream_dir("a", 1_700_000_000)
    ended = media.new_stream_dir("b", 1_700_000_100)
    fill(elsewhere / "seg000000.m4s", 1000, 1000)
    fill(elsewhere / "seg000001.m4s", 1000, NOW - ACTIVE_S / 2)  # a segment just written
    fill(ended / "seg000000.m4s", 1000, 2000)
    result = prune(media, 0, [], now=NOW)
    assert result.recordings == [ended] and elsewhere.exists()
    result = prune(media, 0, [], now=NOW + ACTIVE_S)  # that node stopped writing
    assert result.recordings == [elsewhere]
