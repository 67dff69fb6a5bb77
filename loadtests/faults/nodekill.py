"""A node SIGKILLed while its viewers watch comments stream in: they reconnect to
the other node with ``since`` and must get every event once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from clients.python.room import GapError, RoomClient
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint


class CountingClient(RoomClient):
    """A RoomClient that records every event offset the server sent (before the
    client's own de-duplication), so duplicates and gaps are seen."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.raw: list[int] = []
        self.gaps = 0

    def _event(self, event: dict[str, Any]) -> None:
        self.raw.append(int(event["o"]))
        try:
            super()._event(event)
        except GapError:
            self.gaps += 1
            raise


def _faults(client: CountingClient, start: int, end: int) -> tuple[int, int]:
    """(duplicated, missing) offsets in (start, end] of what the server delivered."""
    window = [o for o in client.raw if start < o <= end]
    duplicated = len(window) - len(set(window))
    missing = len(set(range(start + 1, end + 1)) - set(window))
    return duplicated, missing


async def _drain(client: CountingClient, until: int) -> None:
    while client.offset < until:
        await client.next_event(wait=15)


async def run(root: Path, *, viewers: int = 20, comments: int = 200) -> dict[str, Any]:
    store = Valkey(root)
    store.start()
    a, b = (NodeProc(root / f"n{i}", store.url).start() for i in range(2))
    try:
        create_room(a)
        host = RoomClient(b.url, "r1", mint("host", "host1"))
        await host.connect()
        watchers = [CountingClient(a.url, "r1", mint("viewer", f"w{i}")) for i in range(viewers)]
        for w in watchers:
            await w.connect()
        starts = [w.offset for w in watchers]
        acked = 0
        for k in range(comments):
            await host.request("comment", text=f"n{k}")
            acked += 1
            if k == comments // 3:
                a.kill()  # the viewers' node dies mid-stream
                for w in watchers:  # they move to the other node with their position
                    w.url = w.url.replace(f":{a.port}/", f":{b.port}/")
            await asyncio.sleep(0.005)
        last = (await host.request("comment", text="end"))["o"]
        acked += 1
        recovered = 0
        for w in watchers:
            for _ in range(20):
                try:
                    if (w.closed is not None and w.closed.done()) or w.failure is not None:
                        await w.reconnect()
                        recovered += 1
                    await _drain(w, last)
                    break
                except (OSError, TimeoutError, GapError, ConnectionError):
                    await asyncio.sleep(0.2)
        totals = [_faults(w, s, last) for w, s in zip(watchers, starts, strict=True)]
        for w in watchers:
            await w.close()
        await host.close()
        return {"acked": acked, "recovered_clients": recovered,
                "duplicated": sum(d for d, _ in totals), "gaps": sum(m for _, m in totals),
                "lost": sum(m for _, m in totals), "crashes": b.crashed()}  # fmt: skip
    finally:
        b.stop()
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        store.stop()
