"""A strict check of an LL-HLS media playlist (RFC 8216, draft-pantos-hls-rfc8216bis,
Apple's HLS authoring rules): what every test of a playlist asserts."""

from __future__ import annotations

import itertools

from media.hlsplaylist import MediaPlaylist, attributes, parse

EPS = 0.001


def strict_check(text: str, previous: MediaPlaylist | None = None) -> MediaPlaylist:
    """Parse ``text`` and assert the rules; with ``previous`` (an earlier copy of the
    same playlist), the rules between reloads. Returns the parsed playlist."""
    pl = parse(text)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert sum(1 for x in lines if x.startswith("#EXT-X-TARGETDURATION:")) == 1
    for entry in pl.entries:
        if entry.complete:  # §4.3.3.1: EXTINF rounded to the nearest integer <= target
            assert round(entry.duration) <= pl.target, (entry.msn, entry.duration)
            assert entry.duration <= pl.target + EPS, (entry.msn, entry.duration)
            assert entry.pdt > 0, "EXT-X-PROGRAM-DATE-TIME on every segment"
        for part in entry.parts:
            assert part.duration <= pl.part_target + EPS, (entry.msn, part)
        if entry.parts:
            assert abs(sum(p.duration for p in entry.parts) - entry.duration) < 0.01 or (
                not entry.complete
            )
    msns = [e.msn for e in pl.entries]
    assert msns == sorted(set(msns)), "media sequence numbers increase by one"
    assert all(b - a == 1 for a, b in itertools.pairwise(msns))
    if not pl.ended:
        control = next(x for x in lines if x.startswith("#EXT-X-SERVER-CONTROL:"))
        attrs = attributes(control.partition(":")[2])
        assert attrs["CAN-BLOCK-RELOAD"] == "YES"
        assert float(attrs["PART-HOLD-BACK"]) >= 3 * pl.part_target - EPS
        assert float(attrs["CAN-SKIP-UNTIL"]) >= 6 * pl.target
        assert 0 < pl.part_target <= 1.0
        assert any(x.startswith("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=") for x in lines)
        first_disc = pl.entries[0].discontinuity if pl.entries else False
        assert not first_disc, "a discontinuity on the first segment moves into the sequence"
    for line in lines:  # bis §4.4.5.4: where another rendition is, for a switch
        if line.startswith("#EXT-X-RENDITION-REPORT:"):
            assert not pl.ended, "rendition reports belong to live playlists"
            report = attributes(line.partition(":")[2])
            assert report["URI"].endswith(".m3u8") and report["LAST-MSN"].isdigit(), line
            assert report.get("LAST-PART", "0").isdigit(), line
    if previous is not None:
        assert pl.target == previous.target, "EXT-X-TARGETDURATION never changes"
        assert pl.media_sequence >= previous.media_sequence
        assert pl.discontinuity_seq >= previous.discontinuity_seq
        same = {e.msn: e for e in previous.entries if e.complete}
        for entry in pl.entries:
            if entry.complete and entry.msn in same:
                assert entry.uri == same[entry.msn].uri, "a number names one segment"
    return pl
