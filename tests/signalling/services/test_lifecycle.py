"""Rooms end (by the host, or a grace after the host's stream) and their keys leave."""

from __future__ import annotations

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


def lifecycle_on(client: object, clock: ManualClock, grace: float = 30.0) -> RoomLifecycle:
    settings = Settings(end_grace_s=grace, room_retention_s=3600)
    ctx = NodeContext(settings=settings, secret=b"x" * 32, clock=clock, redis=client,
                      metrics=Metrics("t"), started_at=0.0)  # type: ignore[arg-type]  # fmt: skip
    return RoomLifecycle(ctx)


async def status(life: RoomLifecycle, room: str) -> str:
    meta = await life.ctx.rooms.get(room)
    assert meta is not None
    return str(meta.status.value)


async def test_a_grace_then_the_room_ends_unless_the_host_is_back(redis_url: str) -> None:
    """host_gone sets the room's lease to the grace; a renewal (the host back) keeps the
    room live; past its lease the room ends once; the retention sweep then removes every
    key of the room."""
    client = connect(redis_url)
    clock = ManualClock(1_900_000_000)
    life = lifecycle_on(client, clock)
    ctx = life.ctx
    from livecore.rooms import new_room

    for room in ("kept", "gone"):
        await ctx.rooms.create(new_room({"id": room, "title": "t", "store": "s"}, host="h",
                                        now=clock.time()))  # fmt: skip
    await life.host_gone("kept")
    await life.host_gone("gone")
    clock.advance(10)
    await life.hold("kept")  # back within the grace (its node renews the lease)
    clock.advance(15)
    assert await life.check_leases() == 0  # within both leases
    clock.advance(5.1)
    assert await life.check_leases() == 1  # "gone" lapsed; "kept" was renewed
    assert await status(life, "gone") == "ended" and await status(life, "kept") == "scheduled"
    assert await life.check_leases() == 0  # its lease left with the end
    assert await life.sweep() == 0  # inside the retention
    clock.advance(3601)
    assert await life.sweep() > 0
    assert await ctx.rooms.get("gone") is None and await ctx.rooms.get("kept") is not None
    assert await index.ScoredIndex(client, index.ENDED).upto(2**40, 10) == []
    assert [k async for k in client.scan_iter(match="lc:{gone}:*")] == []
    await client.aclose()


async def test_a_host_back_on_another_node_keeps_the_room(redis_url: str) -> None:
    """The lease runs out while the host publishes again on another node (a fresh origin
    in the store): the room stays live. Once that origin is stale too and its lease
    lapsed (its node died), the room ends, on whichever node sweeps."""
    client = connect(redis_url)
    clock = ManualClock(1_900_000_000)
    life = lifecycle_on(client, clock, grace=5)
    ctx = life.ctx
    from livecore.rooms import new_room

    await ctx.rooms.create(new_room({"id": "moved", "title": "t", "store": "s"}, host="h",
                                    now=clock.time()))  # fmt: skip
    await life.host_gone("moved")  # on node A: its stream went
    clock.advance(5)
    await ctx.stores.media.announce("moved", "h", "node-b", "http://b", int(clock.time()))
    clock.advance(1)
    assert await life.check_leases() == 0
    assert await status(life, "moved") == "scheduled"
    await life.hold("moved")  # node B's beat, then node B dies
    clock.advance(5 + 3 - 0.1)
    assert await life.check_leases() == 0  # its lease has not lapsed yet
    clock.advance(0.2)
    assert await life.check_leases() == 1
    assert await status(life, "moved") == "ended"
    await client.aclose()
