"""Connection churn against one node while a room streams: no fds or memory kept."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgpack
import websockets
from websockets.typing import Subprotocol

from clients.python.room import RoomClient
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint

PROTO = [Subprotocol("livecore.v1")]


async def _visit(node: NodeProc, i: int) -> None:
    async with websockets.connect(f"{node.ws}/ws/r1", subprotocols=PROTO, max_size=2**22) as ws:
        await ws.send(msgpack.packb({"t": "hello", "token": mint("viewer", f"c{i}")}))
        await ws.recv()


async def run(root: Path, *, connects: int = 2000, parallel: int = 32) -> dict[str, Any]:
    store = Valkey(root)
    store.start()
    node = NodeProc(root / "n", store.url).start()
    try:
        create_room(node)
        host = RoomClient(node.url, "r1", mint("host", "host1"))
        watcher = RoomClient(node.url, "r1", mint("viewer", "watcher"))
        await host.connect()
        await watcher.connect()
        # warm up at full parallelism: the node's store pool opens its connections
        # (bounded, 64) once; they are not a leak
        warm = iter(range(-parallel * 4, 0))

        async def warmup() -> None:
            for i in warm:
                await _visit(node, i)

        await asyncio.gather(*(warmup() for _ in range(parallel)))
        await asyncio.sleep(4)
        fds, rss = node.fds(), node.rss_mb()
        todo = iter(range(connects))
        stop = False

        async def stream() -> int:
            sent = 0
            while not stop:
                await host.request("comment", text=f"s{sent}")
                sent += 1
                await asyncio.sleep(0.02)
            return sent

        async def churn() -> None:
            for i in todo:
                await _visit(node, i)

        streamer = asyncio.create_task(stream())
        started = time.monotonic()
        await asyncio.gather(*(churn() for _ in range(parallel)))
        rate = connects / (time.monotonic() - started)
        stop = True
        sent = await streamer
        last = (await host.request("comment", text="end"))["o"]
        while watcher.offset < last:
            await watcher.next_event(wait=10)
        for _ in range(20):  # closing handshakes finish within 3 s
            if node.fds() <= fds:
                break
            await asyncio.sleep(0.5)
        result = {"acked": sent + 1, "connects_per_s": round(rate),
                  "leaked_fds": max(0, node.fds() - fds),
                  "rss_growth_mb": round(max(0.0, node.rss_mb() - rss), 1),
                  "crashes": node.crashed()}  # fmt: skip
        await host.close()
        await watcher.close()
        return result
    finally:
        node.stop()
        store.stop()
