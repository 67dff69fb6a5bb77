"""Room repository and co-stream requests on a real Valkey."""

from __future__ import annotations

import pytest
import redis.asyncio

from livecore.rooms import Room, RoomStatus
from livecore.store.bus import Bus
from livecore.store.media import MediaStore
from livecore.store.nodes import NodeStore
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


@pytest.mark.both_stores
async def test_an_earlier_streams_replay_is_not_offered_once_a_newer_stream_began(
    aredis: redis.asyncio.Redis,
) -> None:
    """A CI run's walk: the host came back on air and 下播'd; the first stream's replay,
    finished after the second began, was offered, and a neighbour played the first part
    only. A replay is recorded only while its stream is the room's newest recording."""
    store, nodes = RoomStore(aredis), NodeStore(aredis)
    await store.create(Room("r1", "T", "S", 1000, "h", 1000))
    await nodes.recording("r1", "1000-aaaaaa", "n1")
    assert await store.set_replay("r1", "/replay/r1.mp4?v=1000-aaaaaa", stream="1000-aaaaaa")
    await nodes.recording("r1", "1010-bbbbbb", "n2")  # the host on air again
    await store.set_replay("r1", "")
    late = "/replay/r1.mp4?v=1000-aaaaaa"
    assert not await store.set_replay("r1", late, stream="1000-aaaaaa")
    room = await store.get("r1")
    assert room is not None and room.replay == ""
    assert [r.replay for r in await store.recent_rooms()] == [""]
    whole = "/replay/r1.mp4?v=1010-bbbbbb"
    assert await store.set_replay("r1", whole, stream="1010-bbbbbb")
    room = await store.get("r1")
    assert room is not None and room.replay == whole


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
