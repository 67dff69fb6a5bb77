"""Fault-suite fixtures: a node with room r1 and limits high enough for probes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Node, create_room
from tests.signalling.hub.conftest import FAST


@pytest.fixture
def hub_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node on the session Valkey with room r1 and FAST message limits."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=FAST).start()
    create_room(node.url)
    yield node
    node.stop()
