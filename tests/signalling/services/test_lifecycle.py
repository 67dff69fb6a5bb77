"""Rooms end (by the host, or a grace after the host's stream) and their keys leave."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from clients.python.room import ClientError, RoomClient
from livecore.clock import ManualClock
from livecore.config import Settings
from livecore.store import index, keys
from livecore.store.client import connect
from signalling.node.context import NodeContext
from signalling.node.metrics import Metrics
from signalling.services.lifecycle import RoomLifecycle
from tests.helpers import Node, create_room, token


def auth(role: str, user: str, room: str = "r1") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user, room)}"}


async def test_the_host_ends_the_room(tmp_path: Path, redis_url: str) -> None:
    """POST /end: status ended at once, room_ended on the channel, open polls closed,
    pending co-stream requests gone; a second end changes nothing; viewers may not end."""
    node = Node(tmp_path / "node", redis_url=redis_url).start()
    try:
        create_room(node.url)
        async with (
            RoomClient(node.url, "r1", token("host", "host1")) as host,
            RoomClient(node.url, "r1", token("koc", "koc1")) as koc,
            RoomClient(node.url, "r1", token("viewer", "v1")) as viewer,
        ):
            poll = (await host.request("poll_open", question="Next?", options=["A", "B"]))["poll"]
            await koc.request("costream_request")
            async with httpx.AsyncClient(base_url=node.url) as http:
                refused = await http.post("/api/rooms/r1/end", headers=auth("viewer", "v1"))
                assert refused.status_code == 403
                ended = await http.post("/api/rooms/r1/end", headers=auth("host", "host1"))
                assert ended.json() == {"ended": True, "already": False}
                again = await http.post("/api/rooms/r1/end", headers=auth("host", "host1"))
                assert again.json() == {"ended": True, "already": True}
                assert (await http.get("/api/rooms/r1")).json()["status"] == "ended"
                missing = await http.post("/api/rooms/nope/end", headers=auth("host", "h", "nope"))
                assert missing.status_code == 404
            seen = []
            while not {"room_ended", "poll_closed"} <= set(seen):
                seen.append((await viewer.next_event(wait=10))["t"])
            assert seen.count("room_ended") == 1
            with pytest.raises(ClientError):
                await host.request("poll_close", poll=poll)  # already closed by the end
        client = connect(redis_url)
        assert not await client.exists(keys.room("r1", "costream:requests"))
        await client.aclose()
    finally:
        node.stop()


async def test_a_grace_then_the_room_ends_unless_the_host_is_back(redis_url: str) -> None:
    """host_gone starts the grace; host_live within it keeps the room live; past it the
    room ends once; the retention sweep then removes every key of the room."""
    client = connect(redis_url)
    clock = ManualClock(1_900_000_000)
    settings = Settings(end_grace_s=0.05, room_retention_s=3600)
    ctx = NodeContext(settings=settings, secret=b"x" * 32, clock=clock, redis=client,
                      metrics=Metrics("t"), started_at=0.0)  # fmt: skip
    from livecore.rooms import new_room

    for room in ("kept", "gone"):
        await ctx.rooms.create(new_room({"id": room, "title": "t", "store": "s"}, host="h",
                                        now=clock.time()))  # fmt: skip
    life = RoomLifecycle(ctx)
    life.host_gone("kept")
    life.host_live("kept")  # back within the grace
    life.host_gone("gone")
    deadline = time.monotonic() + 5
    while (await ctx.rooms.get("gone")).status.value != "ended":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert (await ctx.rooms.get("kept")).status.value == "scheduled"  # type: ignore[union-attr]
    assert await life.sweep() == 0  # inside the retention
    clock.advance(3601)
    assert await life.sweep() > 0
    assert await ctx.rooms.get("gone") is None and await ctx.rooms.get("kept") is not None
    assert await index.ScoredIndex(client, index.ENDED).upto(2**40, 10) == []
    assert [k async for k in client.scan_iter(match="lc:{gone}:*")] == []
    await life.stop()
    await client.aclose()


async def test_a_host_back_on_another_node_keeps_the_room(redis_url: str) -> None:
    """The grace runs out on the node the host's stream left, but the host publishes again
    on another node (a fresh origin in the store): the room stays live. Once that origin
    is stale too (its node died), the next grace ends the room."""
    client = connect(redis_url)
    clock = ManualClock(1_900_000_000)
    settings = Settings(end_grace_s=0.05, room_retention_s=3600)
    ctx = NodeContext(settings=settings, secret=b"x" * 32, clock=clock, redis=client,
                      metrics=Metrics("t"), started_at=0.0)  # fmt: skip
    from livecore.rooms import new_room

    await ctx.rooms.create(new_room({"id": "moved", "title": "t", "store": "s"}, host="h",
                                    now=clock.time()))  # fmt: skip
    await ctx.stores.media.announce("moved", "h", "node-b", "http://b", int(clock.time()))
    life = RoomLifecycle(ctx)
    life.host_gone("moved")  # on node A: its stream went
    await asyncio.sleep(0.3)  # pace: six graces long
    assert (await ctx.rooms.get("moved")).status.value == "scheduled"  # type: ignore[union-attr]
    clock.advance(60)  # node B stopped refreshing its origin: it died
    life.host_gone("moved")
    deadline = time.monotonic() + 5
    while (await ctx.rooms.get("moved")).status.value != "ended":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await life.stop()
    await client.aclose()
