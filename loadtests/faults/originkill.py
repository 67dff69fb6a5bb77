"""Fault: the origin node (the one holding the hosts' WHIP sessions) is SIGKILLed mid-live.

Node A holds every host's stream; the audience (websockets) sits on node B,
except one more room whose only viewer is on A too (no surviving node listens
to it). A is killed with ``kill -9``: nothing of A runs the end grace. Each
room must end within ``--end-grace`` + 5 s of the kill (its lease in Valkey
lapses and B's sweep ends it), the audience on B must hear ``stream_ended``
(``origin_lost``) and ``room_ended``, and no room may stay ``live``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from clients.python.room import RoomClient
from loadtests.clip import Publisher, encode_clip, publish
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint

#: The target: every room ends within the grace plus this many seconds of the kill.
SLACK_S = 5.0


async def _until(client: RoomClient, kind: str, wait: float) -> dict[str, Any] | None:
    """The first event of type ``kind`` within ``wait`` seconds (None: none came)."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = await client.next_event(wait=left)
        except (TimeoutError, ConnectionError, OSError):
            return None
        if event["t"] == kind:
            return event
    return None


async def _ended_at(base: str, room: str, wait: float) -> float | None:
    """When (monotonic) ``room``'s status read ``ended`` (polled every 0.2 s)."""
    deadline = time.monotonic() + wait
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            if (await http.get(f"{base}/api/rooms/{room}")).json()["status"] == "ended":
                return time.monotonic()
            await asyncio.sleep(0.2)
    return None


async def run(
    root: Path, *, rooms: int = 3, viewers: int = 4, grace_s: float = 5.0
) -> dict[str, Any]:
    store = Valkey(root)
    store.start()
    flags = ["--end-grace", str(grace_s), "--record-segment", "1"]
    a = NodeProc(root / "a", store.url, args=flags).start()
    b = NodeProc(root / "b", store.url, args=flags).start()
    names = [f"r{i}" for i in range(rooms)]
    alone = "alone"  # its only viewer is on the origin node: no survivor listens to it
    publishers: list[Publisher] = []
    audience: dict[str, list[RoomClient]] = {}
    try:
        for room in names:
            create_room(a, room)
            audience[room] = [RoomClient(b.url, room, mint("viewer", f"w{i}", room))
                              for i in range(viewers)]  # fmt: skip
            for client in audience[room]:
                await client.connect()
        create_room(a, alone)
        audience[alone] = [RoomClient(a.url, alone, mint("viewer", "w0", alone))]
        await audience[alone][0].connect()
        clip = await asyncio.to_thread(encode_clip, 320, 240, 15, 200_000, 2.0, 1.0)
        async with httpx.AsyncClient(timeout=30) as http:
            for room in [*names, alone]:
                token = mint("host", "host1", room)
                publishers.append(await publish(http, a.url, room, token, clip))
        for room in [*names, alone]:  # every room live, as its audience hears it
            started = await _until(audience[room][0], "stream_started", 20)
            assert started is not None, f"room {room} never went live"
        killed = time.monotonic()
        a.kill()
        lonely = asyncio.ensure_future(_ended_at(b.url, alone, grace_s + 30))
        ended_after: list[float] = []
        told_lost = told_ended = 0
        for room in names:
            for client in audience[room]:
                lost = await _until(client, "stream_ended", grace_s + 30)
                told_lost += lost is not None and lost.get("reason") == "origin_lost"
                if await _until(client, "room_ended", grace_s + 30) is not None:
                    told_ended += 1
                    if client is audience[room][0]:
                        ended_after.append(time.monotonic() - killed)
        lonely_end = await lonely
        if lonely_end is not None:
            ended_after.append(lonely_end - killed)
        async with httpx.AsyncClient(timeout=10) as http:
            states = [(await http.get(f"{b.url}/api/rooms/{r}")).json()["status"]
                      for r in [*names, alone]]  # fmt: skip
        total = rooms + 1
        worst = max(ended_after) if len(ended_after) == total else None
        late = sum(1 for s in ended_after if s > grace_s + SLACK_S) + total - len(ended_after)
        return {
            "rooms": total,
            "grace_s": grace_s,
            "ended_within_s": round(worst, 1) if worst is not None else None,
            "late_rooms": late,
            "stuck_live": sum(1 for s in states if s == "live"),
            "told_origin_lost": told_lost,
            "told_room_ended": told_ended,
            "audience_on_survivor": rooms * viewers,
            "crashes": b.crashed(),
        }
    finally:
        for clients in audience.values():
            for client in clients:
                await client.close()
        for publisher in publishers:
            await publisher.pc.close()
        b.stop()
        if a.proc is not None and a.proc.poll() is None:
            a.stop()
        store.stop()
