"""The dashboard's sampled history on a real Valkey."""

from __future__ import annotations

import pytest

from livecore.store.client import StoreClient
from livecore.store.dash_history import DashboardHistory
from livecore.store.room_meta import RoomStore


async def test_one_claim_per_step(aredis: StoreClient) -> None:
    """Of several nodes asking in one step, one takes the sample; the claim expires."""
    history = DashboardHistory(aredis)
    assert [await history.claim("r1", 5) for _ in range(3)] == [True, False, False]
    assert await history.claim("r2", 5) is True
    assert 0 < await aredis.ttl("lc:{r1}:dash:claim") <= 5


async def test_samples_are_capped_oldest_first(aredis: StoreClient) -> None:
    """Only the last ``cap`` samples stay, oldest first; a malformed sample is refused."""
    history = DashboardHistory(aredis)
    for i in range(7):
        await history.add("r1", [1000 + i, i, 2 * i, 0, 1, 1], cap=4)
    assert [row[0] for row in await history.read("r1")] == [1003, 1004, 1005, 1006]
    assert (await history.read("r1"))[-1] == [1006, 6, 12, 0, 1, 1]
    with pytest.raises(ValueError):
        await history.add("r1", [1, 2])
    assert await history.read("r2") == []


async def test_the_history_leaves_with_its_room(aredis: StoreClient) -> None:
    """The room's retention sweep removes its history and claim (one hash tag)."""
    history = DashboardHistory(aredis)
    await history.claim("r1", 5)
    await history.add("r1", [1000, 1, 2, 3, 4, 5])
    await RoomStore(aredis).forget("r1")
    assert await history.read("r1") == [] and not await aredis.exists("lc:{r1}:dash:claim")
