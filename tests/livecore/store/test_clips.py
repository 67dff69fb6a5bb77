"""The clip store on a real Valkey: bounded per room, newest first, delete once."""

from __future__ import annotations

import redis.asyncio

from livecore.clips import Clip, parse_public_id, public_id
from livecore.store.clips import ClipStore


def clip(n: int, room: str = "r1") -> Clip:
    return Clip(
        id=f"{n:012x}", room=room, stream="1700000000-abcdef", kind="mark", title="t",
        start=float(n), duration=12.5, created_at=1_700_000_000 + n, product="苹果",
        reason={"kind": "mark"},
    )  # fmt: skip


async def test_add_list_cap_delete(aredis: redis.asyncio.Redis) -> None:
    store = ClipStore(aredis, cap=3)
    dropped: list[str] = []
    for n in range(5):
        dropped += await store.add(clip(n))
    assert dropped == [f"{0:012x}", f"{1:012x}"]
    assert [c.id for c in await store.list("r1")] == [f"{n:012x}" for n in (4, 3, 2)]
    got = await store.get("r1", f"{3:012x}")
    assert got == clip(3) and got.public()["product"] == "苹果"
    assert await store.get("r1", f"{0:012x}") is None
    assert await store.delete("r1", f"{3:012x}") is True
    assert await store.delete("r1", f"{3:012x}") is False
    assert await store.list("other") == []
    keys = sorted(k.decode() for k in await aredis.keys("*"))
    assert keys == ["lc:{r1}:clipdata", "lc:{r1}:clips"]


def test_public_ids() -> None:
    assert parse_public_id(public_id("room.1:x", "0123456789ab")) == ("room.1:x", "0123456789ab")
    for bad in ("r1", "r1~xyz", "~0123456789ab", "../x~0123456789ab", "r1~0123456789AB"):
        assert parse_public_id(bad) is None
