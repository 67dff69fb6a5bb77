"""Room repository against a real Valkey."""

from __future__ import annotations

import asyncio

import redis.asyncio

from livecore.rooms import Room
from livecore.store.room_meta import RoomStore


def room(room_id: str, host: str = "h", created: int = 1) -> Room:
    return Room(id=room_id, title="t", store="s", starts_at=1, host=host, created_at=created)


async def test_create_then_get(aredis: redis.asyncio.Redis) -> None:
    """A created room reads back equal; an unknown id reads None."""
    store = RoomStore(aredis)
    assert await store.create(room("r1"))
    assert await store.get("r1") == room("r1")
    assert await store.get("nope") is None


async def test_only_one_creator_wins(aredis: redis.asyncio.Redis) -> None:
    """Twenty concurrent creates of one id: exactly one succeeds, its host is kept."""
    store = RoomStore(aredis)
    results = await asyncio.gather(*(store.create(room("r1", host=f"h{i}")) for i in range(20)))
    assert sum(results) == 1
    winner = results.index(True)
    stored = await store.get("r1")
    assert stored is not None and stored.host == f"h{winner}"


async def test_recent_newest_first(aredis: redis.asyncio.Redis) -> None:
    """The index lists the newest rooms first, bounded by limit."""
    store = RoomStore(aredis)
    for i in range(5):
        await store.create(room(f"r{i}", created=i))
    assert await store.recent(limit=3) == ["r4", "r3", "r2"]
