"""The media lookup's pure parts (the whole path, three nodes behind nginx, is
tests/clients/deploy/test_nginx.py)."""

from __future__ import annotations

from signalling.services.medialookup import playlist_max_age


def test_a_live_playlist_is_cached_half_a_segment() -> None:
    """A CDN may keep a live playlist half a segment (at least 1 s): a new segment shows
    within half its length; an immutable segment's URL never changes."""
    assert [playlist_max_age(s) for s in (1, 2, 3, 4, 6, 10)] == [1, 1, 1, 2, 3, 5]
