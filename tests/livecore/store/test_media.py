"""Origins: one staleness rule for the snapshot and the media plane."""

from __future__ import annotations

from livecore.store.media import ORIGIN_TTL_S, Origin


def test_origin_staleness() -> None:
    """An origin whose heartbeat is older than ORIGIN_TTL_S is stale."""
    origin = Origin.parse("node-1|http://127.0.0.1:1|100")
    assert not origin.is_stale(100 + ORIGIN_TTL_S)
    assert origin.is_stale(101 + ORIGIN_TTL_S)
