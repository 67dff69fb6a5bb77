"""Slow consumers in a streaming room: cut off (4008) in bounded time and memory,
the room's other viewers served on time and completely meanwhile.

Two kinds of bad reader join a room whose host comments 50 times a second
(450 characters each):
clients that stop reading right after ``hello`` (default socket buffers), and
clients with a 4 KiB SO_RCVBUF that read one byte a second (the TCP window
kept nearly shut). The node's drain timer (``ws_drain_timeout_s``) must close
each once its send buffer has not emptied for that long, before the byte
limit (``ws_send_buffer``) is reached in a room this quiet.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from loadtests.faults.audience import Audience
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint
from loadtests.faults.nodemetrics import NodeMetrics
from loadtests.faults.rawclient import joined_socket, trickle

DRAIN_S = 2.0
#: The node's connections and per-user/per-address counts the bad readers add.
STRUCTURES = ("ws_connections", "ws_by_user", "ws_by_address")


async def run(root: Path, *, stopped: int = 2, trickling: int = 2, viewers: int = 8,
              quiet_s: float = 2.0, limit_s: float = 25.0) -> dict[str, Any]:  # fmt: skip
    store = Valkey(root)
    store.start()
    node = NodeProc(root / "n", store.url, args=["--comment-max-chars", "500"],
                    settings={"ws_drain_timeout_s": DRAIN_S}).start()  # fmt: skip
    try:
        create_room(node)
        # ~25 KB/s to each viewer: the stalled ones' kernel buffers fill in seconds
        audience = Audience(node, viewers, rate=50, size=450)
        await audience.start()
        await asyncio.sleep(1)
        audience.phase = "quiet"
        await asyncio.sleep(quiet_s)
        before = await NodeMetrics.read(node.url)
        sockets, rss = node.client_sockets(), node.rss_mb()
        audience.phase = "slow"
        started = time.monotonic()
        socks = [await joined_socket(node.port, "r1", mint("viewer", f"stall{i}"))
                 for i in range(stopped)]  # fmt: skip
        socks += [await joined_socket(node.port, "r1", mint("viewer", f"trickle{i}"), rcvbuf=4096)
                  for i in range(trickling)]  # fmt: skip
        readers = [asyncio.create_task(trickle(s)) for s in socks[stopped:]]
        peak_rss, cut_s, state_back = rss, None, False
        while time.monotonic() - started < limit_s:
            now = await NodeMetrics.read(node.url)
            peak_rss = max(peak_rss, node.rss_mb())
            cut = now.slow_consumers - before.slow_consumers
            state_back = all(now.state[k] == before.state[k] for k in STRUCTURES)
            if cut >= len(socks) and state_back:
                cut_s = round(time.monotonic() - started, 1)
                break
            await asyncio.sleep(0.5)  # reading /metrics is not free for the node
        audience.phase = "after"
        await asyncio.sleep(1)
        delivery = await audience.stop()
        trickled = []
        for task in readers:
            task.cancel()
            trickled.append(await asyncio.gather(task, return_exceptions=True))
        for sock in socks:
            sock.close()
        after = await NodeMetrics.read(node.url)
        await asyncio.sleep(0.5)
        return {
            **delivery,
            "slow_clients": len(socks),
            "cut_off": after.slow_consumers - before.slow_consumers,
            "cut_within_s": cut_s,
            "viewer_p99_ratio": audience.ratio("slow"),
            "peak_rss_growth_mb": round(max(0.0, peak_rss - rss), 1),
            "leaked_fds": max(0, node.client_sockets() - sockets),
            "state_back": state_back,
            "crashes": node.crashed(),
        }
    finally:
        node.stop()
        store.stop()
