"""Live rooms' leases on a real Valkey (the lifecycle's sweep reads them)."""

from __future__ import annotations

from livecore.rooms import Room
from livecore.store.client import StoreClient
from livecore.store.leases import RoomLeases
from livecore.store.room_meta import RoomStore


async def test_a_lease_lapses_unless_renewed_and_leaves_with_the_room(
    aredis: StoreClient,
) -> None:
    """lapsed lists rooms whose lease ran out, oldest first; a renewal moves it on;
    drop and forgetting the room remove it."""
    leases = RoomLeases(aredis)
    for i, until in enumerate((105.0, 101.0, 130.0)):
        await leases.hold(f"r{i}", until)
    assert await leases.lapsed(110) == ["r1", "r0"]
    await leases.hold("r0", 140)  # renewed by its origin
    assert await leases.lapsed(110) == ["r1"]
    await leases.drop("r1")
    assert await leases.lapsed(135) == ["r2"]
    rooms = RoomStore(aredis)
    await rooms.create(Room("r2", "T", "S", 1000, "h", 1000))
    await rooms.forget("r2")
    assert await leases.lapsed(1e12) == ["r0"]
