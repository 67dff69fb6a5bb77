"""``python -m loadtests export``: a past room's history as an audience trace.

The same as ``livecore trace export`` (``livecore.audience.export`` does the
work), ending as every scenario does: one JSON line with ``"ok"``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from livecore.audience.export import export_room
from livecore.audience.trace import Trace
from livecore.store.client import connect
from loadtests.stats import HelpFormatter, log
from loadtests.verdict import finish


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests export", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("room", help="room id")
    parser.add_argument("--redis", required=True, help="the nodes' Redis/Valkey URL")
    parser.add_argument("--out", type=Path, required=True, help="trace file to write")
    parser.add_argument("--keep-text", action="store_true",
                        help="keep comment text (default: only its length)")  # fmt: skip
    args = parser.parse_args(argv)

    async def go() -> Trace:
        redis = connect(args.redis)
        try:
            return await export_room(redis, args.room, args.out, keep_text=args.keep_text)
        finally:
            await redis.aclose()

    trace = asyncio.run(go())
    log(f"export: {len(trace.events)} events of room {args.room} → {args.out}")
    written = {"out": str(args.out), "room": args.room, "events": len(trace.events)}
    return finish("export", written, [] if trace.events else [f"room {args.room} has no events"])
