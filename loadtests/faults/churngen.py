"""``python -m loadtests.faults.churngen PORT TOKENS...``: connection churn from
its own process, so the viewers measured beside it are not slowed by its loop.

Each visit opens a websocket to room r1, says hello, reads the snapshot and
closes. Visits are paced at ``--rate`` per second (0: as fast as ``--parallel``
workers go) for ``--seconds`` or ``--connects``; the last line printed is JSON:
visits done and failed, seconds, this process's CPU seconds, and whether the
pacing fell behind (the generator, not the node, was then the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import msgpack
import uvloop
import websockets
from websockets.typing import Subprotocol

from loadtests.faults.cluster import mint

PROTO = [Subprotocol("livecore.v1")]


async def visit(url: str, token: str) -> None:
    async with websockets.connect(url, subprotocols=PROTO, max_size=2**22, open_timeout=10) as ws:
        await ws.send(msgpack.packb({"t": "hello", "token": token}))
        await ws.recv()


async def churn(port: int, *, rate: float, seconds: float, connects: int,
                parallel: int, first: int = 0) -> dict[str, Any]:  # fmt: skip
    """Visit until ``connects`` are done or ``seconds`` passed (whichever is set)."""
    url = f"ws://127.0.0.1:{port}/ws/r1"
    started = time.perf_counter()
    cpu = time.process_time()
    counter = iter(range(first, first + (connects or 10**9)))
    done = failed = late = 0

    async def worker() -> None:
        nonlocal done, failed, late
        for i in counter:
            due = started + (i - first) / rate if rate else time.perf_counter()
            now = time.perf_counter()
            if seconds and now - started >= seconds:
                return
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 0.1:
                late += 1  # every worker busy: the generator cannot keep the pace
            try:
                await visit(url, mint("viewer", f"c{i}"))
                done += 1
            except (OSError, websockets.WebSocketException, TimeoutError):
                failed += 1

    await asyncio.gather(*(worker() for _ in range(parallel)))
    spent = time.perf_counter() - started
    return {"done": done, "failed": failed, "seconds": round(spent, 2),
            "rate": round(done / spent) if spent else 0, "late": late,
            "cpu_s": round(time.process_time() - cpu, 2)}  # fmt: skip


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.faults.churngen")
    parser.add_argument("port", type=int)
    parser.add_argument("--rate", type=float, default=0.0, help="visits/s (0: unpaced)")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--connects", type=int, default=0)
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--first", type=int, default=0, help="number of the first user")
    args = parser.parse_args(argv)
    result = uvloop.run(churn(args.port, rate=args.rate, seconds=args.seconds,
                                connects=args.connects, parallel=args.parallel,
                                first=args.first))  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
