"""Valkey SIGKILLed and restarted while comments, votes and joins flow through two
nodes. Every request is answered (ack or ``store_unavailable``); clients retry
refused ones with the same key (comment ``cid``; votes and joins are once per
user); afterwards every acknowledged action is in the store exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgpack

from clients.python.room import ClientError, RoomClient
from livecore.store.bus import Bus
from livecore.store.client import open_store
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint

COMMUNITY = "hz-cuiyuan-1"


class Tally:
    def __init__(self) -> None:
        self.acked = 0
        self.refused = 0
        self.silent = 0
        self.reconnects = 0


async def until_acked(client: RoomClient, tally: Tally, kind: str, **fields: Any) -> dict[str, Any]:
    for _ in range(200):
        try:
            ack = await client.request(kind, wait=10, **fields)
            tally.acked += 1
            return ack
        except ClientError as err:
            if err.code != "store_unavailable":
                raise
            tally.refused += 1
        except TimeoutError:
            tally.silent += 1
        except ConnectionError:
            pass
        await asyncio.sleep(0.2)
        if client.ws is None or client.closed is None or client.closed.done():
            tally.reconnects += 1
            try:
                await client.reconnect()
            except Exception:  # the node may still be reconnecting its store
                await asyncio.sleep(0.3)
    raise RuntimeError(f"{kind} never acknowledged")


async def viewer(node: NodeProc, user: str, comments: int, poll: str, gb: str,
                 tally: Tally, cids: list[str], room: str = "r1",
                 gate: asyncio.Event | None = None) -> None:  # fmt: skip
    """Vote, join, then comment ``comments`` times, each retried until acknowledged;
    with a ``gate``, wait after the first comment until it opens (every viewer then
    has most of its comments still to send when the fault comes)."""
    client = RoomClient(node.url, room, mint("viewer", user, room, community=COMMUNITY))
    await client.connect()
    try:
        await until_acked(client, tally, "vote", poll=poll, option=0)
        await until_acked(client, tally, "groupbuy_join", gb=gb, qty=1)
        for k in range(comments):
            cid = f"{user}-{k}"
            await until_acked(client, tally, "comment", text=f"c {cid}", cid=cid)
            cids.append(cid)
            if gate is not None and k == 0:
                await gate.wait()
            await asyncio.sleep(0.05)  # pace: a person's comments
    finally:
        await client.close()


async def _health_during_outage(nodes: list[NodeProc]) -> bool:
    async with httpx.AsyncClient(timeout=5) as http:
        codes = [(await http.get(f"{n.url}/healthz")).status_code for n in nodes]
    return all(code == 503 for code in codes)


async def run(root: Path, *, viewers: int = 10, comments: int = 30) -> dict[str, Any]:
    """The scenario; returns its figures."""
    store = Valkey(root)
    store.start()
    nodes = [NodeProc(root / f"n{i}", store.url).start() for i in range(2)]
    try:
        poll, gb = await open_room(nodes[0])
        tally, cids = Tally(), []  # type: ignore[var-annotated]
        users = [f"v{i}" for i in range(viewers)]
        flows = [asyncio.create_task(viewer(nodes[i % 2], u, comments, poll, gb, tally, cids))
                 for i, u in enumerate(users)]  # fmt: skip
        await asyncio.sleep(0.7)
        store.kill()
        await asyncio.sleep(0.5)
        unhealthy = await _health_during_outage(nodes)
        await asyncio.sleep(1.5)
        store.start()
        await asyncio.gather(*flows)
        return {"acked": tally.acked, "refused": tally.refused, "silent": tally.silent,
                "healthz_503_during_outage": unhealthy,
                **await verify(store.url, nodes[1], users, cids, poll, gb)}  # fmt: skip
    finally:
        for node in nodes:
            node.stop()
        crashes = sum(node.crashed() for node in nodes)
        store.stop()
        _LAST["crashes"] = crashes


_LAST: dict[str, int] = {}


async def open_room(node: NodeProc, room: str = "r1") -> tuple[str, str]:
    """Create ``room`` with a poll and a group buy open; (poll, group buy)."""
    create_room(node, room)
    host = RoomClient(node.url, room, mint("host", "host1", room))
    await host.connect()
    poll = (await host.request("poll_open", question="A?", options=["A", "B"]))["poll"]
    gb = (await host.request("groupbuy_open", product="Peach", price_cents=100,
                             duration_s=3600, target=1000))["gb"]  # fmt: skip
    await host.close()
    return str(poll), str(gb)


async def verify(url: str, node: NodeProc, users: list[str], cids: list[str], poll: str,
                 gb: str, room: str = "r1") -> dict[str, Any]:  # fmt: skip
    """What the store holds: each acked comment once, each acked vote and join once."""
    client = await open_store(url)
    bus = Bus(client)
    seen: Counter[str] = Counter()
    after = 0
    head = (await bus.head(room)).offset
    while after < head:
        entries = await bus.history(room, after, head, limit=1000)
        if not entries:
            break
        for _offset, payload in entries:
            event = msgpack.unpackb(payload, raw=False)
            if event.get("t") == "comment" and event.get("cid"):
                seen[event["cid"]] += 1
        after = entries[-1][0]
    await client.aclose()
    checker = RoomClient(node.url, room, mint("viewer", "checker", room))
    snap = await checker.connect()
    await checker.close()
    votes = sum(next(p for p in snap["polls"] if p["poll"] == poll)["counts"])
    async with httpx.AsyncClient() as http:
        buys = (await http.get(f"{node.url}/api/rooms/{room}/groupbuys")).json()["groupbuys"]
    members = sum(g["members"] for b in buys if b["id"] == gb for g in b["groups"])
    lost = sum(1 for cid in cids if seen[cid] == 0) + max(0, len(users) - votes)
    lost += max(0, len(users) - members)
    duplicated = sum(n - 1 for n in seen.values() if n > 1) + max(0, votes - len(users))
    duplicated += max(0, members - len(users))
    return {"lost": lost, "duplicated": duplicated, "votes": votes, "joins": members,
            "comments": len(cids)}  # fmt: skip


def crashes() -> int:
    return _LAST.get("crashes", 0)
