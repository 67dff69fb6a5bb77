"""Valkey Cluster faults: a primary SIGKILLed (its replica takes over), and a live
room's slot migrated to another primary, while comments, votes and joins flow
through two nodes.

A cluster of 3 primaries with one replica each (AOF ``always``) and two nodes.
One room per shard, viewers of each room on both nodes, every request retried
until acknowledged with the same key (the clients of ``storekill``). Afterwards
every acknowledged comment, vote and join is in the store exactly once; the
rooms on the other shards carry on; they may see a few refusals while the
nodes' cluster client relearns the slot map (redis-py then recycles every
connection it holds), which their clients retry like any other.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from redis.crc import key_slot

from livecore.store import keys
from livecore.valkey.cluster import LocalCluster
from loadtests.faults.cluster import NodeProc
from loadtests.faults.storekill import Tally, open_room, verify, viewer


def slot_of(room: str) -> int:
    return int(key_slot(keys.room(room, "meta").encode()))


def rooms_per_shard(cluster: LocalCluster) -> dict[int, str]:
    """One room id per primary (port → room), found by hashing candidate ids."""
    out: dict[int, str] = {}
    i = 0
    primaries = {n.port for n in cluster.table() if n.primary}
    while len(out) < len(primaries):
        room = f"shop-{i}"
        out.setdefault(cluster.owner_of(slot_of(room)), room)
        i += 1
    return out


async def _flows(nodes: list[NodeProc], rooms: list[str], viewers: int, comments: int,
                 gate: asyncio.Event | None = None,
                 ) -> tuple[dict[str, Any], list[asyncio.Task[None]]]:  # fmt: skip
    state: dict[str, Any] = {}
    tasks = []
    for room in rooms:  # every room first, so every room's viewers start together
        poll, gb = await open_room(nodes[0], room)
        tally, cids = Tally(), []  # type: ignore[var-annotated]
        users = [f"{room}-v{i}" for i in range(viewers)]
        state[room] = {"poll": poll, "gb": gb, "tally": tally, "cids": cids, "users": users}
    for room, s in state.items():
        tasks += [asyncio.create_task(viewer(nodes[i % 2], u, comments, s["poll"], s["gb"],
                                             s["tally"], s["cids"], room, gate))
                  for i, u in enumerate(s["users"])]  # fmt: skip
    return state, tasks


def _under_way(s: dict[str, Any]) -> bool:
    """Every viewer of the room is connected, voted, joined and had a comment acked."""
    started = {cid.rsplit("-", 1)[0] for cid in s["cids"]}
    return all(user in started for user in s["users"])


async def _mid_way(state: dict[str, Any], within_s: float = 30.0) -> None:
    """Until every viewer of every room is under way (most of its comments to come)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not all(_under_way(s) for s in state.values()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the viewers did not get going")
        await asyncio.sleep(0.02)  # pace: a look at the tallies


async def _figures(url: str, node: NodeProc, state: dict[str, Any], hit: str) -> dict[str, Any]:
    out: dict[str, Any] = {"acked": 0, "acked_others": 0, "lost": 0, "duplicated": 0,
                           "refused_hit": 0, "refused_others": 0, "silent": 0}  # fmt: skip
    for room, s in state.items():
        tally: Tally = s["tally"]
        found = await verify(url, node, s["users"], s["cids"], s["poll"], s["gb"], room)
        out["acked"] += tally.acked
        out["lost"] += found["lost"]
        out["duplicated"] += found["duplicated"]
        out["silent"] += tally.silent
        out["refused_hit" if room == hit else "refused_others"] += tally.refused
        if room != hit:
            out["acked_others"] += tally.acked
    return out


async def run(root: Path, *, viewers: int = 6, comments: int = 30) -> dict[str, Any]:
    """Failover, then resharding, on one cluster; returns the figures of both."""
    cluster = LocalCluster(root / "cluster", primaries=3, replicas=1, fsync="always",
                           node_timeout_ms=1500)  # fmt: skip
    cluster.start()
    nodes: list[NodeProc] = []
    try:
        nodes = [NodeProc(root / f"n{i}", cluster.url).start() for i in range(2)]
        shards = rooms_per_shard(cluster)
        victim_port, hit = next(iter(shards.items()))
        rooms = list(shards.values())

        # Every viewer waits after its first comment until all are under way, so the
        # primary dies with every viewer mid-traffic however slowly they connected.
        gate = asyncio.Event()
        state, tasks = await _flows(nodes, rooms, viewers, comments, gate)
        await _mid_way(state)
        gate.set()
        await asyncio.sleep(0.1)  # pace: comments flowing again, most still to come
        in_flight = sum(not task.done() for task in tasks)  # viewers mid-way
        cluster.node_on(victim_port).process.kill()  # type: ignore[union-attr]
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(timeout=5) as http:
            health = [(await http.get(f"{n.url}/healthz")).status_code for n in nodes]
        failover_s = await asyncio.to_thread(
            cluster.wait_owner, slot_of(hit), other_than=victim_port
        )
        await asyncio.gather(*tasks)
        failover = {"failover_s": round(failover_s, 2), "viewers_in_flight": in_flight,
                    "healthz_during_failover": health,
                    **await _figures(cluster.url, nodes[1], state, hit)}  # fmt: skip

        # A new room, live while its slot moves to another (live) primary.
        state, tasks = await _flows(nodes, ["moving"], viewers, comments)
        live = "moving"
        await asyncio.sleep(0.5)
        started = time.monotonic()
        primaries = {n.port for n in cluster.table() if n.primary and not n.failed}
        dest = min(p for p in primaries if p != cluster.owner_of(slot_of(live)))
        keys_moved = await asyncio.to_thread(cluster.move_slot, slot_of(live), dest)
        reshard_s = time.monotonic() - started
        await asyncio.gather(*tasks)
        reshard = {"keys_moved": keys_moved, "reshard_s": round(reshard_s, 2),
                   "owner_after": cluster.owner_of(slot_of(live)) == dest,
                   **await _figures(cluster.url, nodes[0], state, live)}  # fmt: skip
        return {"failover": failover, "reshard": reshard,
                "crashes": sum(n.crashed() for n in nodes),
                "library_errors": sum(n.library_errors() for n in nodes)}  # fmt: skip
    finally:
        for node in nodes:
            node.stop()
        cluster.stop()
