"""Fixtures for the room channel: a node with room r1 and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from clients.python.room import RoomClient
from tests.helpers import Node, create_room, token

FAST = ["--ws-message-rate", "10000", "--comment-rate", "1000", "--comment-burst", "1000"]


@pytest.fixture
def hub_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node on the session Valkey with room r1 created."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=["--hello-timeout", "1"])
    node.start()
    create_room(node.url)
    yield node
    node.stop()


@pytest.fixture
async def connect(
    hub_node: Node,
) -> AsyncIterator[Callable[..., object]]:
    """``await connect(role, user)`` → a connected RoomClient, closed after the test."""
    clients: list[RoomClient] = []

    async def make(role: str = "viewer", user: str = "v1", node: Node | None = None) -> RoomClient:
        client = RoomClient((node or hub_node).url, "r1", token(role, user))
        await client.connect()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
