"""Room repository and co-stream requests on a real Valkey."""

from __future__ import annotations

import redis.asyncio

from livecore.rooms import Room, RoomStatus
from livecore.store.bus import Bus
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


async def test_an_ended_room_stays_ended(aredis: redis.asyncio.Redis) -> None:
    """A publisher that raced the end cannot set an ended room live again; the replay
    can still be recorded."""
    store = RoomStore(aredis)
    await store.create(Room("r1", "T", "S", 1000, "h", 1000))
    await store.set_status("r1", RoomStatus.LIVE.value)
    assert await store.end("r1", 2000, Bus(aredis)) == 1
    await store.set_status("r1", RoomStatus.LIVE.value)
    await store.set_replay("r1", "/replay/r1.mp4")
    ended = await store.get("r1")
    assert ended is not None and ended.status is RoomStatus.ENDED
    assert ended.replay == "/replay/r1.mp4"
    assert [r.status for r in await store.recent_rooms()] == [RoomStatus.ENDED]


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
