"""LruDict: bounded by evicting the least recently used entries."""

from __future__ import annotations

from livecore.lru import LruDict


def test_evicts_least_recently_used() -> None:
    """Past capacity the entry least recently read or written goes, not the whole map."""
    cache: LruDict[str, int] = LruDict(3)
    for key in "abc":
        cache[key] = ord(key)
    assert cache.get("a") == ord("a")  # a is now the newest
    cache["d"] = 4
    assert "b" not in cache and len(cache) == 3 and cache.get("a") is not None
