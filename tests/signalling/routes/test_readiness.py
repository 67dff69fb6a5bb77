"""/readyz: Valkey and every loop of the node."""

from __future__ import annotations

from pathlib import Path

import httpx

from livecore.valkey.embedded import EmbeddedValkey
from signalling.routes.health import STUCK_AFTER_S, stuck_loops
from tests.helpers import Node, free_port


def test_a_silent_loop_is_stuck() -> None:
    """A loop whose last turn is older than its limit is named; recent ones are not."""
    now = 1000.0
    beats = {"broadcast": now - 0.1, "housekeeping": now - 0.5, "bus": now - 1, "media": now - 2}
    assert stuck_loops(beats, now) == []
    beats["broadcast"] = now - STUCK_AFTER_S["broadcast"] - 0.1
    assert stuck_loops(beats, now) == ["broadcast"]


def test_readyz_follows_valkey(tmp_path: Path) -> None:
    """200 with every loop turning; 503 naming redis while Valkey is down."""
    valkey = EmbeddedValkey(tmp_path / "vk", tcp_port=free_port())
    valkey.start()
    node = Node(tmp_path / "n", redis_url=valkey.tcp_url).start()
    try:
        ready = httpx.get(f"{node.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "node_id": ready.json()["node_id"],
                                "redis": True, "stuck": []}  # fmt: skip
        valkey.stop()
        down = httpx.get(f"{node.url}/readyz", timeout=10)
        assert down.status_code == 503 and down.json()["redis"] is False
    finally:
        node.stop()
