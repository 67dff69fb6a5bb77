"""A pub/sub loss larger than one history fetch is refilled in turns, not resynced."""

from __future__ import annotations

from typing import Any

import msgpack
import redis.asyncio

from livecore.store.bus import Bus
from tests.helpers import Node

LOST = 5000


async def test_a_gap_of_5000_events_reaches_every_viewer(
    connect: Any, hub_node: Node, aredis: redis.asyncio.Redis
) -> None:
    """5,000 events land in the history without being published (as if the node's
    pub/sub dropped them); the next published one reveals the gap: both viewers get
    all 5,001 in order, none twice, and nobody is told to resync."""
    viewers = [await connect("viewer", f"v{i}") for i in range(2)]
    host = await connect("host", "host1")
    start = viewers[0].offset
    bus = Bus(aredis)
    for i in range(LOST):
        payload = msgpack.packb({"t": "comment", "user": "u", "text": f"lost {i}", "ts": 0})
        await bus._emit(  # the emit script, publishing to a channel nobody reads
            keys=bus.emit_keys("r1"), args=["nobody-listens", payload, 20_000, "x"]
        )
    await host.request("comment", text="after the gap")
    for viewer in viewers:
        texts: list[str] = []
        while len(texts) < LOST + 1:
            event = await viewer.next_event(wait=20)
            if event.get("t") == "comment":
                texts.append(event["text"])
        assert texts[0] == "lost 0" and texts[LOST - 1] == f"lost {LOST - 1}"
        assert texts[-1] == "after the gap"
        assert viewer.offset == start + LOST + 1
        assert viewer.closed is not None and not viewer.closed.done()
