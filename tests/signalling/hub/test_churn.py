"""10,000 rooms and 10,000 users come and go: every structure returns to its size."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import psutil
import pytest
import redis.asyncio
import websockets

from livecore.rooms import Room
from livecore.store.room_meta import RoomStore
from tests.helpers import Node, token
from tests.signalling.hub.test_bad_input import PROTO
from tests.waiting import eventually

#: 2,000 in `make test`; LIVECORE_CHURN=10000 for the full figure (docs/reliability.md).
CHURN = int(os.environ.get("LIVECORE_CHURN", "2000"))
PARALLEL = 32


@pytest.fixture
def churn_node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    args = [
        "--room-idle",
        "1",
        "--ws-max-per-ip",
        "0",
        "--ws-message-rate",
        "10000",
        "--comment-rate",
        "1000",
        "--comment-burst",
        "1000",
        "--log-level",
        "warning",
    ]
    node = Node(tmp_path / "n", redis_url=redis_url, extra_args=args).start()
    yield node
    node.stop()


def sizes(node: Node) -> dict[str, float]:
    text = httpx.get(f"{node.url}/metrics").text
    found = re.findall(r'^livecore_state_entries\{structure="([a-z_]+)"\} (\S+)$', text, re.M)
    return {name: float(value) for name, value in found}


async def visit(node: Node, i: int) -> None:
    url = f"ws://127.0.0.1:{node.port}/ws/c{i}"
    async with websockets.connect(url, subprotocols=PROTO, max_size=2**22) as ws:
        await ws.send(msgpack.packb({"t": "hello", "token": token("viewer", f"u{i}", f"c{i}")}))
        assert msgpack.unpackb(await ws.recv())["t"] == "snapshot"
        await ws.send(msgpack.packb({"t": "comment", "id": 1, "text": "hi"}))
        await ws.send(msgpack.packb({"t": "like", "id": 2, "n": 1}))
        seen = 0
        while seen < 2:
            reply = msgpack.unpackb(await ws.recv())
            seen += reply["t"] in ("ack", "error")


async def worker(node: Node, queue: Iterator[int]) -> None:
    for i in queue:
        await visit(node, i)


async def test_churn_leaves_nothing_behind(churn_node: Node, aredis: redis.asyncio.Redis) -> None:
    """CHURN rooms with one user each come and go, in two rounds of new rooms. After
    each round the node's structures are back to their start. Its RSS stays up after
    the first round (CPython keeps the arenas its objects used, pinned by a few
    survivors; glibc's malloc_trim gives nothing back either): within 48 MiB. The
    second round, as many rooms again, reuses that memory: under 8 MiB more, so
    nothing is kept per room."""
    store = RoomStore(aredis)
    now = int(time.time())
    for start in range(0, CHURN, 50):
        await asyncio.gather(*(store.create(Room(f"c{i}", "t", "s", now, "h", now))
                               for i in range(start, min(CHURN, start + 50))))  # fmt: skip
    proc = psutil.Process(churn_node.proc.pid)  # type: ignore[union-attr]
    before = await asyncio.to_thread(sizes, churn_node)
    await visit(churn_node, 0)  # warm up the code paths

    async def at_rest() -> bool:  # the visits' rooms and users have left again
        return await asyncio.to_thread(sizes, churn_node) == before

    await eventually(at_rest, within=30, step=0.2, what="the warm-up visit's state gone")
    rss = [proc.memory_info().rss]
    half = CHURN // 2
    for first, last in ((1, half), (half, CHURN)):
        queue = iter(range(first, last))
        await asyncio.gather(*(worker(churn_node, queue) for _ in range(PARALLEL)))
        during = await asyncio.to_thread(sizes, churn_node)
        assert during["rooms"] > 0 or during["comment_limits"] > 0  # the churn was seen
        await eventually(at_rest, within=30 + CHURN / 200, step=0.5,
                         what=f"structures back to {before}")  # fmt: skip
        rss.append(proc.memory_info().rss)
    first_round, second_round = ((b - a) / 2**20 for a, b in itertools.pairwise(rss))
    print(f"churn {CHURN}: rss +{first_round:.1f} MiB, then +{second_round:.1f} MiB")
    assert first_round < 48, f"RSS grew {first_round:.1f} MiB in the first round"
    assert second_round < 8, f"RSS grew {second_round:.1f} MiB more for as many rooms again"
