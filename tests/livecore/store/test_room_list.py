"""The room list in one round trip, on one Valkey and on a cluster."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from livecore.rooms import Room, RoomStatus
from livecore.store import index, keys
from livecore.store.bus import Bus
from livecore.store.client import StoreClient
from livecore.store.index import BUCKETS, ScoredIndex
from livecore.store.room_list import summary_key
from livecore.store.room_meta import RoomStore


class Trips:
    """Round trips in time: a command sent after a reply was read starts a new one
    (the pipelines of several shards sent side by side are one)."""

    def __init__(self) -> None:
        self.count = 0
        self.sent = 0
        self._replied = True

    def send(self) -> None:
        self.sent += 1
        if self._replied:
            self.count += 1
            self._replied = False

    def reply(self) -> None:
        self._replied = True


@contextlib.contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Trips]:
    trips = Trips()
    send, read = AbstractConnection.send_packed_command, AbstractConnection.read_response

    async def sending(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        trips.send()
        return await send(self, *args, **kwargs)

    async def reading(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        reply = await read(self, *args, **kwargs)
        trips.reply()
        return reply

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", sending)
        patch.setattr(AbstractConnection, "read_response", reading)
        yield trips


async def command_calls(redis: StoreClient) -> Counter[str]:
    """Commands the server (every primary of a cluster) has run, from INFO commandstats."""
    if isinstance(redis, RedisCluster):
        infos = [await n.execute_command("INFO", "commandstats") for n in redis.get_primaries()]
    else:
        infos = [await redis.info("commandstats")]
    calls: Counter[str] = Counter()
    for info in infos:
        for name, stats in info.items():
            calls[name.removeprefix("cmdstat_")] += int(stats["calls"])
    return calls


async def listing(redis: StoreClient, store: RoomStore, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The list, with the round trips it took and the commands the servers ran."""
    before = await command_calls(redis)
    with round_trips(monkeypatch) as trips:
        rooms = await store.recent_rooms()
    ran = await command_calls(redis) - before
    for bookkeeping in ("info", "ping"):
        ran.pop(bookkeeping, None)
    return rooms, trips.count, dict(ran)


def room(i: int) -> Room:
    return Room(f"r{i}", f"门店{i}", "S", 1000 + i, "h", 1000 + i)


async def test_the_list_is_one_round_trip(
    aredis: StoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 rooms: the 50 newest, whole, in one round trip of 16 scripts (one per
    bucket); no per-room read."""
    store = RoomStore(aredis)
    for i in range(60):
        await store.create(room(i))
    await store.recent_rooms()  # connections opened
    rooms, trips, ran = await listing(aredis, store, monkeypatch)
    assert [r.id for r in rooms] == [f"r{i}" for i in range(59, 9, -1)]
    assert rooms[0] == room(59)
    assert trips == 1
    # (commandstats counts a script's own commands too: one ZREVRANGE and HMGET each)
    assert ran == {"eval": BUCKETS, "zrevrange": BUCKETS, "hmget": BUCKETS}


async def test_the_list_follows_status_and_replay(aredis: StoreClient) -> None:
    """Going live, a replay and the end reach the list as they reach the room."""
    store = RoomStore(aredis)
    for i in range(3):
        await store.create(room(i))
    await store.set_status("r1", RoomStatus.LIVE.value)
    await store.set_replay("r0", "/replay/r0.mp4")
    assert await store.end("r2", 2000, Bus(aredis)) == 1
    listed = {r.id: r for r in await store.recent_rooms()}
    for room_id in ("r0", "r1", "r2"):
        assert listed[room_id] == await store.get(room_id)
    assert listed["r1"].status == RoomStatus.LIVE and listed["r2"].status == RoomStatus.ENDED
    assert listed["r0"].replay == "/replay/r0.mp4"


async def test_a_store_written_before_summaries_still_lists(
    aredis: StoreClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rooms with only their index entry and hash (no ``rev``, no summary) are listed
    alike; the first list writes their summaries, the next is one round trip."""
    store = RoomStore(aredis)
    rooms_index = ScoredIndex(aredis, index.ROOMS)
    for i in range(5):
        await rooms_index.add(f"r{i}", 1000 + i)
        await aredis.hset(keys.room(f"r{i}", "meta"), mapping=room(i).to_hash())
    await rooms_index.add("ghost", 999)  # an entry whose room was never created
    assert await store.recent_rooms() == [room(i) for i in range(4, -1, -1)]
    rooms, trips, _ = await listing(aredis, store, monkeypatch)
    assert rooms == [room(i) for i in range(4, -1, -1)] and trips == 1
    await store.set_status("r3", RoomStatus.LIVE.value)
    assert (await store.recent_rooms())[1].status == RoomStatus.LIVE


async def test_an_older_copy_does_not_replace_a_newer(aredis: StoreClient) -> None:
    """Two nodes copying one room in the wrong order leave the newer copy."""
    store = RoomStore(aredis)
    await store.create(room(1))
    await store.set_status("r1", RoomStatus.LIVE.value)
    await store.listing.put("r1", 1, room(1))  # the creation's copy, late
    assert (await store.recent_rooms())[0].status == RoomStatus.LIVE


async def test_forgotten_rooms_leave_the_summaries(aredis: StoreClient) -> None:
    """A room swept after its retention leaves its bucket's summaries too."""
    store = RoomStore(aredis)
    await store.create(room(1))
    await store.forget("r1")
    assert await store.recent_rooms() == []
    assert not await aredis.hexists(summary_key(index.bucket_of("r1")), "r1")
    await store.listing.put("r1", 5, room(1))  # a late copy is not kept
    assert not await aredis.hexists(summary_key(index.bucket_of("r1")), "r1")
