"""Room repository and co-stream requests on a real Valkey."""

from __future__ import annotations

import redis.asyncio

from livecore.rooms import Room
from livecore.store.media import MediaStore
from livecore.store.room_meta import RoomStore


async def test_recent_rooms_newest_first(aredis: redis.asyncio.Redis) -> None:
    """recent_rooms gives the 50 newest rooms, whole, newest first."""
    store = RoomStore(aredis)
    for i in range(60):
        await store.create(Room(f"r{i}", f"T{i}", "S", 1000 + i, "h", 1000 + i))
    rooms = await store.recent_rooms()
    assert [r.id for r in rooms] == [f"r{i}" for i in range(59, 9, -1)]
    assert rooms[0].title == "T59"


async def test_repeated_costream_request_is_not_new(aredis: redis.asyncio.Redis) -> None:
    """A second request while the first is pending is reported as such (no new event)."""
    store = MediaStore(aredis)
    assert await store.request("r1", "koc1", 100) == 1
    assert await store.request("r1", "koc1", 101) == 2
    assert await store.request("r1", "koc2", 101, max_pending=1) == 0


async def test_old_costream_requests_lapse(aredis: redis.asyncio.Redis) -> None:
    """50 KOCs asked long ago: a new request is taken (the stale ones lapse), while 50
    recent ones still fill the list."""
    from livecore.store.media import REQUEST_MAX_AGE_S

    store = MediaStore(aredis)
    for i in range(50):
        assert await store.request("r1", f"old{i}", 1000) == 1
    assert await store.request("r1", "late", 1000 + REQUEST_MAX_AGE_S - 1) == 0
    assert await store.request("r1", "late", 1000 + REQUEST_MAX_AGE_S + 1) == 1
    assert await aredis.hlen("lc:{r1}:costream:requests") == 1
    assert 0 < await aredis.ttl("lc:{r1}:costream:requests") <= REQUEST_MAX_AGE_S
