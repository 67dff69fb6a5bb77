"""Blocking playlist reloads and hinted parts against a real segment writer's files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from livecore.errors import ErrorCode, LivecoreError
from media.hlsplaylist import parse
from media.recfiles import PLAYLIST_NAME
from media.recorder import RecorderStats
from media.segments import SegmentWriter
from signalling.services.hlswait import (
    Directives,
    PlaylistWaits,
    answer_playlist,
    wait_for_file,
    with_rendition_reports,
)
from tests.media.hlscheck import strict_check
from tests.media.test_segments import HALF, INIT, fragment

ROOM = "r1"


def writer(tmp_path: Path, waits: PlaylistWaits) -> SegmentWriter:
    """A writer whose playlist changes wake ``waits`` (as the recording plane wires it);
    segment target 0.5 s, parts 0.25 s: target duration 1 s, so a hold ends within 3 s."""
    loop = asyncio.get_running_loop()
    waits.local.add(ROOM)
    return SegmentWriter(tmp_path, window_s=60, counters=RecorderStats(), segment_s=0.5,
                         part_s=0.25, on_change=waits.notifier(loop, ROOM))  # fmt: skip


def test_directives_are_checked() -> None:
    """Numbers in range, _HLS_part only with _HLS_msn, _HLS_skip only YES."""
    assert Directives.from_query(QueryParams("_HLS_msn=3&_HLS_part=1")) == Directives(3, 1)
    assert Directives.from_query(QueryParams("_HLS_skip=YES")).skip
    for bad in ("_HLS_part=1", "_HLS_msn=-1", "_HLS_msn=x", "_HLS_msn=99999999999",
                "_HLS_skip=v2", "_HLS_msn=1&_HLS_part=1.5"):  # fmt: skip
        with pytest.raises(LivecoreError) as err:
            Directives.from_query(QueryParams(bad))
        assert err.value.code is ErrorCode.HLS_BAD_DIRECTIVE, bad


async def test_a_blocking_reload_returns_when_the_part_appears(tmp_path: Path) -> None:
    """The request for the next part is held, and answered as soon as the writer adds
    it: with a playlist that lists it."""
    waits = PlaylistWaits()
    w = writer(tmp_path, waits)
    sink = w.begin()
    sink.write(INIT)
    sink.write(fragment(0, b"k", HALF // 2, key=True))
    pl = parse((tmp_path / PLAYLIST_NAME).read_text())
    msn, part = pl.entries[-1].msn, len(pl.entries[-1].parts)
    held = asyncio.ensure_future(
        answer_playlist(tmp_path / PLAYLIST_NAME, Directives(msn, part), waits, ROOM)
    )
    await asyncio.sleep(0)  # the request is waiting now (no part yet)
    assert not held.done()
    started = time.monotonic()
    await asyncio.to_thread(sink.write, fragment(HALF // 2, b"p", HALF // 2, key=False))
    text = await asyncio.wait_for(held, 2)
    assert time.monotonic() - started < 1.0
    got = strict_check(text)
    assert len(got.entries[-1].parts) == part + 1


async def test_a_blocking_reload_is_bounded_and_too_far_is_refused(tmp_path: Path) -> None:
    """Nothing new for three target durations: 503 media_unavailable; a segment more
    than two ahead: 400 hls_too_far at once. A hinted part that never comes: False."""
    waits = PlaylistWaits()
    w = writer(tmp_path, waits)
    sink = w.begin()
    sink.write(INIT)
    sink.write(fragment(0, b"k", HALF // 2, key=True))
    path = tmp_path / PLAYLIST_NAME
    pl = parse(path.read_text())
    started = time.monotonic()
    with pytest.raises(LivecoreError) as err:
        await answer_playlist(path, Directives(pl.entries[-1].msn + 2), waits, ROOM)
    assert err.value.code is ErrorCode.HLS_TOO_FAR and time.monotonic() - started < 0.5
    with pytest.raises(LivecoreError) as err:
        await answer_playlist(path, Directives(pl.entries[-1].msn, 1), waits, ROOM)
    assert err.value.code is ErrorCode.MEDIA_UNAVAILABLE
    assert 2.9 <= time.monotonic() - started < 4.0  # three target durations of 1 s
    hinted = tmp_path / pl.hint.split("/")[-1]
    assert not await wait_for_file(hinted, waits, ROOM, 0.3)
    waiting = asyncio.ensure_future(wait_for_file(hinted, waits, ROOM, 3))
    await asyncio.sleep(0)
    await asyncio.to_thread(sink.write, fragment(HALF // 2, b"p", HALF // 2, key=False))
    assert await asyncio.wait_for(waiting, 2) and hinted.is_file()
    # The stream stops: a request held for the part the playlist hinted is let go at
    # once (the playlist hints nothing now), not after its whole hold.
    never = tmp_path / parse(path.read_text()).hint.split("/")[-1]
    waiting = asyncio.ensure_future(wait_for_file(never, waits, ROOM, 3))
    await asyncio.sleep(0)
    started = time.monotonic()
    await asyncio.to_thread(w.close)
    assert not await asyncio.wait_for(waiting, 2)
    assert time.monotonic() - started < 1.0 and not never.is_file()


async def test_a_live_playlist_reports_the_other_renditions(tmp_path: Path) -> None:
    """Served live, each rendition's playlist says where every other one recorded beside
    it is (its last segment and part); an unreadable sibling is left out; an ended or
    multivariant playlist is served as it is."""
    waits = PlaylistWaits()
    top, low = writer(tmp_path, waits), SegmentWriter(
        tmp_path, window_s=60, counters=RecorderStats(), segment_s=0.5, part_s=0.25,
        layer="l",
    )  # fmt: skip
    for w in (top, low):
        sink = w.begin()
        sink.write(INIT)
        sink.write(fragment(0, b"k", HALF // 2, key=True))
    (tmp_path / "m_index.m3u8").write_text("#EXTM3U\n#EXT-X-PART")  # half written
    text = (tmp_path / PLAYLIST_NAME).read_text()
    served = with_rendition_reports(tmp_path / PLAYLIST_NAME, text)
    low_pl = parse((tmp_path / "l_index.m3u8").read_text())
    last = low_pl.entries[-1]
    assert served == text + (
        f'#EXT-X-RENDITION-REPORT:URI="l_index.m3u8",LAST-MSN={last.msn},'
        f"LAST-PART={len(last.parts) - 1}\n"
    )
    strict_check(served)
    other = with_rendition_reports(
        tmp_path / "l_index.m3u8", (tmp_path / "l_index.m3u8").read_text()
    )
    assert '#EXT-X-RENDITION-REPORT:URI="index.m3u8",LAST-MSN=' in other
    assert "m_index" not in other
    ended = text.replace("#EXT-X-PRELOAD-HINT", "#EXT-X-ENDLIST\n#X")
    assert with_rendition_reports(tmp_path / PLAYLIST_NAME, ended) == ended
