"""The node registry and who holds which media file and session, on a real Valkey."""

from __future__ import annotations

from livecore.rooms import Room
from livecore.store.client import StoreClient
from livecore.store.nodes import NODE_TTL_S, Held, NodeStore
from livecore.store.room_meta import RoomStore


async def test_a_node_is_found_while_it_renews(aredis: StoreClient) -> None:
    """register → url; the entry expires on its own (a dead node) and unregister drops it."""
    nodes = NodeStore(aredis)
    await nodes.register("n1", "http://198.51.100.5:8080")
    assert await nodes.url("n1") == "http://198.51.100.5:8080"
    assert 0 < await aredis.ttl("lc:node:n1") <= NODE_TTL_S
    await nodes.unregister("n1")
    assert await nodes.url("n1") is None and await nodes.url("never") is None


async def test_holders_of_streams_the_newest_recording_and_the_replay(
    aredis: StoreClient,
) -> None:
    """A later recording on another node becomes the newest; each stream keeps its node;
    the replay names its node and version; all of it leaves with the room's keys."""
    nodes = NodeStore(aredis)
    await nodes.recording("r1", "1796650000-aaaaaa", "a")
    await nodes.recording("r1", "1796650100-bbbbbb", "b")
    assert await nodes.latest("r1") == Held("b", "1796650100-bbbbbb")
    assert await nodes.stream_holder("r1", "1796650000-aaaaaa") == Held("a")
    assert await nodes.stream_holder("r1", "1796650200-cccccc") is None
    assert await nodes.replay_holder("r1") is None
    await nodes.replay("r1", "b", "1796650100-bbbbbb")
    assert await nodes.replay_holder("r1") == Held("b", "1796650100-bbbbbb")
    rooms = RoomStore(aredis)
    await rooms.create(Room("r1", "T", "S", 1000, "h", 1000))
    await rooms.forget("r1")
    assert await nodes.latest("r1") is None
