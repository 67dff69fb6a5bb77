"""The LL-HLS playlist model: text both ways, blocking-reload rules, delta updates."""

from __future__ import annotations

from media.hlsplaylist import (
    Entry,
    MediaPlaylist,
    Part,
    Wait,
    check_request,
    drop_leading,
    parse,
    render,
    rendition_report,
    target_duration,
)
from tests.media.hlscheck import strict_check

T0 = 1_800_000_000.0


def entry(msn: int, *, complete: bool = True, parts: int = 4, disc: bool = False) -> Entry:
    ps = tuple(Part(0.5, f"s/seg{msn:06d}.{i}.m4s", i == 0) for i in range(parts))
    return Entry(msn, f"s/seg{msn:06d}.m4s" if complete else "", "s/init.mp4", T0 + 2 * msn,
                 0.5 * parts if complete else 0.0, complete, disc, True, ps)  # fmt: skip


def live(first: int, last: int, open_parts: int = 2) -> MediaPlaylist:
    entries = [entry(m) for m in range(first, last + 1)]
    if open_parts:
        entries.append(entry(last + 1, complete=False, parts=open_parts))
    hint = f"s/seg{last + 1:06d}.{open_parts}.m4s"
    return MediaPlaylist(3, 0.5, tuple(entries), hint=hint)


def test_the_target_duration_leaves_room_for_a_late_keyframe() -> None:
    """Fixed up front: the segment target plus one part, rounded up."""
    assert [target_duration(s, 0.5) for s in (1.0, 2.0, 2.5, 4.0)] == [2, 3, 3, 5]


def test_render_then_parse_gives_the_playlist_back() -> None:
    """What the recorder writes is what the routes read (parts of the last segments only)."""
    pl = live(10, 20)
    text = render(pl)
    back = strict_check(text)
    assert back.media_sequence == 10 and back.target == 3 and back.part_target == 0.5
    assert [e.msn for e in back.entries] == list(range(10, 22))
    assert render(back) == text
    assert text.count("#EXT-X-PART:") == 3 * 4 + 2  # the last three segments and the open one
    assert "#EXT-X-PART-INF:PART-TARGET=0.500" in text
    assert "CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=18.0,PART-HOLD-BACK=1.500" in text
    assert text.rstrip().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="s/seg000021.2.m4s"')
    ended = render(MediaPlaylist(3, 0.5, tuple(entry(m) for m in range(3)), ended=True))
    assert "#EXT-X-PART" not in ended and "SERVER-CONTROL" not in ended
    assert ended.endswith("#EXT-X-ENDLIST\n")


def test_a_discontinuity_that_slides_out_counts_in_the_sequence() -> None:
    """RFC 8216 §6.2.1: the first segment never carries the tag; the sequence grows."""
    pl = MediaPlaylist(3, 0.5, (entry(5), entry(6), entry(7, disc=True), entry(8)))
    assert "#EXT-X-DISCONTINUITY\n" in render(pl)
    one = drop_leading(pl, 1)
    assert one.discontinuity_seq == 0 and one.media_sequence == 6
    two = drop_leading(pl, 2)
    assert two.discontinuity_seq == 1 and not two.entries[0].discontinuity
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in render(two)
    assert "#EXT-X-DISCONTINUITY\n" not in render(two)
    assert drop_leading(pl, 3).discontinuity_seq == 1


def test_blocking_requests_ready_hold_or_too_far() -> None:
    """bis §6.2.5.2: a segment or part that exists answers now; the next ones hold; more
    than two segments ahead, or parts beyond the advance limit plus a player's CDN
    tune-in (1.5 target durations: 9 parts of 0.5 s here), are refused."""
    pl = live(10, 20, open_parts=2)  # segments 10..20 complete, 21 open with parts 0, 1
    assert check_request(pl, 20, None) is Wait.READY
    assert check_request(pl, 21, None) is Wait.HOLD
    assert check_request(pl, 22, None) is Wait.HOLD
    assert check_request(pl, 23, None) is Wait.TOO_FAR
    assert check_request(pl, 21, 1) is Wait.READY
    assert check_request(pl, 21, 2) is Wait.HOLD
    assert check_request(pl, 21, 13) is Wait.HOLD  # 3 + 9 parts past part 1
    assert check_request(pl, 21, 14) is Wait.TOO_FAR
    assert check_request(pl, 22, 0) is Wait.HOLD
    assert check_request(pl, 22, 7) is Wait.HOLD  # 4 parts to 21's end (6 a segment), 8 more
    assert check_request(pl, 22, 8) is Wait.TOO_FAR
    assert check_request(pl, 5, 0) is Wait.READY  # already slid out: the newest answers
    done = MediaPlaylist(3, 0.5, pl.entries[:-1], ended=True)
    assert check_request(done, 99, 0) is Wait.READY


def test_hls_js_cdn_tune_in_after_a_late_playlist_is_held() -> None:
    """A CI run through nginx: hls.js had segment 6 complete and nothing of 7, got the
    playlist late (a loaded machine), and asked 3 parts into 7 (its CDN tune-in goal);
    that was a 400 and a full reload; now it is held until the part is written."""
    pl = live(0, 6, open_parts=0)
    assert check_request(pl, 7, 3) is Wait.HOLD
    assert check_request(pl, 8, 5) is Wait.HOLD  # a segment (6 parts) and 5: within 3 + 9
    assert check_request(pl, 8, 6) is Wait.TOO_FAR


def test_a_delta_update_skips_what_is_older_than_can_skip_until() -> None:
    """bis §6.2.5.1: segments that end more than 18 s (6 x 3 s) before the end are
    replaced by EXT-X-SKIP; the map is repeated for the first segment listed."""
    pl = live(0, 29)  # 30 segments of 2 s, one open
    text = render(pl, skip=True)
    delta = parse(text)
    assert delta.skipped == 30 - 9 and delta.media_sequence == 0
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=21" in text
    assert delta.entries[0].msn == 21
    assert text.index("#EXT-X-SKIP") < text.index("#EXT-X-MAP")
    assert render(live(0, 5), skip=True) == render(live(0, 5))  # nothing old enough


def test_a_rendition_report_names_the_last_segment_and_part() -> None:
    """bis §4.4.5.4: LAST-MSN the last segment (the open one too), LAST-PART its last
    part's index; a segment listed whole (no parts) gives no LAST-PART; none when empty."""
    assert rendition_report("m_index.m3u8", live(10, 20, open_parts=2)) == (
        '#EXT-X-RENDITION-REPORT:URI="m_index.m3u8",LAST-MSN=21,LAST-PART=1'
    )
    assert rendition_report("l_index.m3u8", live(10, 20, open_parts=0)) == (
        '#EXT-X-RENDITION-REPORT:URI="l_index.m3u8",LAST-MSN=20,LAST-PART=3'
    )
    whole = MediaPlaylist(3, 0.5, (entry(7, parts=0),))
    assert rendition_report("x.m3u8", whole) == '#EXT-X-RENDITION-REPORT:URI="x.m3u8",LAST-MSN=7'
    assert rendition_report("x.m3u8", MediaPlaylist(3, 0.5)) is None
    # A playlist with reports still parses as itself (the tag is not a segment's).
    report = rendition_report("m_index.m3u8", live(3, 5))
    assert report is not None
    text = render(live(10, 20)) + report + "\n"
    assert render(strict_check(text)) == render(live(10, 20))
