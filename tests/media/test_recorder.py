"""Recording a real aiortc publisher: segments, playlist, replay and clips by remux only."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import av
import pytest
from aiortc import RTCSessionDescription

from media import metrics
from media.clipper import NothingToCut, build_replay, cut_clip, extend_replay, thumbnail
from media.recfiles import INIT_NAME, PLAYLIST_NAME
from media.recorder import RecorderConfig, Recording
from media.recordtap import feed
from media.sessions import accept_publisher
from tests.media.conftest import GOP
from tests.media.sources import EncodedClip, publisher_offer
from tests.waiting import eventually

GOP_S = GOP / 30


def video_packets(path: Path) -> list[av.Packet]:
    with av.open(str(path)) as f:
        return [p for p in f.demux(f.streams.video[0]) if p.pts is not None]


def duration(path: Path) -> float:
    with av.open(str(path)) as f:
        return float(f.duration or 0) / 1e6


@pytest.fixture
async def recorded(tmp_path: Path, h264_clip: EncodedClip, opus_clip: EncodedClip) -> Recording:
    """~7 s of a real publisher (H.264 GOP 2 s + Opus) recorded into tmp_path/rec."""
    pc, offer = await publisher_offer([h264_clip, opus_clip])
    answer, session = await accept_publisher(offer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    rec = Recording(tmp_path / "rec", audio=True, config=RecorderConfig(segment_s=2.0))
    task = asyncio.ensure_future(feed(rec, session.relays))
    try:
        await eventually(lambda: rec.recorded_until >= 6.5, within=30)
    finally:
        await session.close()
        await pc.close()
        await task
    await asyncio.get_running_loop().run_in_executor(None, rec.join, 10)
    assert rec.ended.is_set()
    return rec


async def test_segments_playlist_replay_and_clip(recorded: Recording) -> None:
    """Keyframe-aligned fMP4 segments, an init segment, a finished HLS playlist; then
    the replay and a clip from them."""
    segs = recorded.segments()
    assert len(segs) >= 3
    assert recorded.stats.dropped == 0 and recorded.stats.errors == 0
    # One segment per GOP (2 s, the segment target); never past the fixed target
    # duration (3 s: room for a keyframe after the target).
    assert all(0 < s.duration <= 3.0 for s in segs)
    assert sum(1 for s in segs if abs(s.duration - GOP_S) < 0.1) >= 2
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(segs))
    assert (recorded.dir / INIT_NAME).is_file()
    assert not (recorded.dir / "full.mp4").exists()  # the segments are the whole stream
    text = (recorded.dir / PLAYLIST_NAME).read_text()
    prefix = recorded.dir.name + "/"
    assert text.startswith("#EXTM3U") and f'#EXT-X-MAP:URI="{prefix}init.mp4"' in text
    assert "#EXT-X-ENDLIST" not in text and "#EXT-X-PRELOAD-HINT" not in text  # paused
    assert all(s.name in text for s in segs)
    # Each independent segment, after the init segment, starts with a keyframe; one
    # that does not was cut at a part so as not to pass the target duration.
    init = (recorded.dir / INIT_NAME).read_bytes()
    for before, seg in itertools.pairwise(segs):
        if not seg.independent:
            assert before.duration > 3.0 - 0.5
            continue
        one = recorded.dir.parent / "one.mp4"
        one.write_bytes(init + (recorded.dir / seg.name).read_bytes())
        assert video_packets(one)[0].is_keyframe
    assert metrics.codec_ops.value == 0
    replay_and_clip_by_remux(recorded, recorded.dir.parent)


def replay_and_clip_by_remux(recorded: Recording, tmp_path: Path) -> None:
    """The replay covers the stream; a clip has the asked length (± one GOP), starts on a
    keyframe at 0, and its video packets are the recording's bytes (no re-encode)."""
    replay = tmp_path / "replay.mp4"
    result = build_replay(recorded.dir, replay)
    total = sum(s.duration for s in recorded.segments())
    assert duration(replay) == pytest.approx(total, abs=GOP_S)
    assert result.first_is_keyframe
    head = replay.read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head  # faststart

    # The host published again in the same live: the replay grows by the new stream.
    first = duration(replay)
    whole = extend_replay(replay, recorded.dir, replay)
    assert duration(replay) == pytest.approx(2 * first, abs=0.2)
    assert whole.duration == pytest.approx(2 * first, abs=0.2)
    assert video_packets(replay)[0].is_keyframe
    assert len(video_packets(replay)) == 2 * result.video_packets

    clip = tmp_path / "clip.mp4"
    cut = cut_clip(recorded.dir, recorded.segments(), 2.5, 5.5, clip)
    assert cut.first_is_keyframe and cut.stream_start <= 2.5
    assert 3.0 - 0.1 <= cut.duration <= 3.0 + GOP_S + 0.1
    assert duration(clip) == pytest.approx(cut.duration, abs=0.1)
    packets = video_packets(clip)
    assert packets[0].is_keyframe and packets[0].pts == 0
    with av.open(str(clip)) as f:
        assert {s.type for s in f.streams} == {"video", "audio"}
        assert f.streams.video[0].codec_context.name == "h264"
    source = {bytes(p) for p in video_packets(replay)}
    assert all(bytes(p) in source for p in packets)
    jpg = tmp_path / "clip.jpg"
    thumbnail(clip, jpg)
    assert jpg.read_bytes()[:2] == b"\xff\xd8"
    assert metrics.codec_ops.value == 0
    with pytest.raises(NothingToCut):
        cut_clip(recorded.dir, recorded.segments(), 500, 520, tmp_path / "none.mp4")


def test_full_queue_drops_to_the_next_keyframe(tmp_path: Path, h264_clip: EncodedClip) -> None:
    """A recording whose worker is behind drops frames, then resumes on a keyframe."""
    rec = Recording(tmp_path / "r", audio=False, config=RecorderConfig(queue_frames=10))
    # Not started: nothing drains the queue.
    for i, (data, key) in enumerate(h264_clip.frames[:70]):
        p = av.Packet(data)
        p.pts, p.time_base, p.is_keyframe = i * 3000, h264_clip.time_base, key
        rec.put("video", p)
    assert rec.stats.dropped == 60
    rec.finish()
    assert rec.ended.is_set()


def test_a_timestamp_from_nowhere_is_dropped_not_fatal(
    tmp_path: Path, h264_clip: EncodedClip
) -> None:
    """A frame whose clock jumped by 2^32 ticks (a wrapped RTP timestamp) is dropped and
    counted; the MP4 muxer, which aborts the whole process past 2^31 ticks between two
    frames, never sees it, and the frames after it are recorded."""
    rec = Recording(tmp_path / "r", audio=False, config=RecorderConfig(queue_frames=1000))
    rec.start()
    for i, (data, key) in enumerate(h264_clip.frames[:60]):
        p = av.Packet(data)
        pts = i * 3000 + (2**32 - 900_000 if i == 40 else 0)  # 10 s back, wrapped
        p.pts, p.time_base, p.is_keyframe = pts, h264_clip.time_base, key
        rec.put("video", p)
    rec.finish()
    rec.join(30)
    assert rec.stats.errors == 0 and rec.stats.dropped == 1
    assert rec.stats.frames_muxed == 59
