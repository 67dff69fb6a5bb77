"""``python -m loadtests groupbuy``: neighbours joining community group buys through K nodes.

Each round the host opens a group buy (scope community, target set so about
half of the communities form); every user, connected to one of the nodes
with a token that fixes their community, joins it; 30% send the same join
again (a retry), 10% leave and half of those rejoin. Rounds repeat until
``--duration`` has passed. Prints one JSON object (last line of stdout):
``"ok": true`` with ``store, joins_sent, joins_per_s, ack_latency_ms {p50,
p99}, exact, formed_events, formed_expected, duplicate_formed, load_cpu_pct,
node_us_per_join, store_us_per_join, others_cpu_pct`` (and ``slo_missed``, exit
code 99, when ack p99 was above ``--max-p99-ms``) (CPU per join of the nodes
and of the store, which other processes on a shared machine disturb less than
the rate; and how much CPU those other processes took in the window);
or ``{"ok": false, "reason": ...}`` with no figures and exit code 1 (see
``loadtests.verdict``) when a user failed to connect or a join was refused
(the run stops there), the counts are not exact, a group formed twice or
not as expected, or the load generator (one process on the load CPU,
``load_cpu_pct``) was saturated, so that the join rate would be its own.

``exact`` is true when, for every group, the member count in Valkey equals
the number of distinct members in Valkey, equals the members the acks say
(the client-side model), and equals the last count an observer in that
community was pushed. ``formed_expected`` is the number of groups whose final
membership reached the target; ``formed_events`` the ``groupbuy_formed``
events in the room's history; ``duplicate_formed`` the events beyond one
per group.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import psutil

from livecore.store import keys
from livecore.store.client import describe, open_store
from loadtests.fanout import PER_WORKER
from loadtests.local import (
    LOAD_CPU,
    Cluster,
    add_cluster_option,
    local_cluster,
    pin,
    target_cluster,
)
from loadtests.plot import write_cdf
from loadtests.stats import (
    HelpFormatter,
    MachineCpu,
    cpu_seconds,
    log,
    percentile,
    report_others,
)
from loadtests.verdict import Outcome, over, saturated
from loadtests.verdict import run as run_verdict
from loadtests.wsclient import LeanConnection, Stats, host_port, open_connection

ROOM = "groupbuy"
CONNECT_CONCURRENCY = 200


class Buyer(LeanConnection):
    """A user's connection: requests with ids, acks resolved as futures; an
    observer also decodes pushed group states."""

    observer = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting: dict[int, tuple[float, asyncio.Future[dict[str, Any]]]] = {}
        self.seq = 0
        self.seen: dict[tuple[str, str], dict[str, Any]] = {}

    def request(self, kind: str, /, **fields: Any) -> asyncio.Future[dict[str, Any]]:
        self.seq += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.seq] = (time.perf_counter(), future)
        self.send(msgpack.packb({"t": kind, "id": self.seq, **fields}))
        return future

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind in ("ack", "error"):
            sent, future = self.waiting.pop(message.get("id") or -1, (0.0, None))
            if future is not None and not future.done():
                message["latency_ms"] = (time.perf_counter() - sent) * 1000
                future.set_result(message)
        elif kind == "batch" and self.observer:
            for gb, groups in (message.get("st") or {}).get("groups", {}).items():
                for group, state in groups.items():
                    known = self.seen.get((gb, group))
                    if known is None or state["v"] > known["v"]:
                        self.seen[(gb, group)] = state
        else:
            super().on_message(message)

    def _frame(self, opcode: int, payload: bytes) -> None:
        if self.observer and opcode == 0x2 and payload.startswith(b"\x85\xa1t\xa5batch"):
            self.on_message(msgpack.unpackb(payload, raw=False))
            return
        super()._frame(opcode, payload)


async def _connect(cluster: Cluster, users: int, communities: int) -> tuple[Buyer, list[Buyer]]:
    stats = Stats()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int, role: str, user: str, community: str | None) -> Buyer:
        host, port = host_port(cluster.urls[i % len(cluster.urls)])
        from livecore import tokens

        token = tokens.mint(cluster.secret, role=tokens.Role(role), room=ROOM, user=user,
                            ttl_s=3600, community=community)  # fmt: skip
        hello = msgpack.packb({"t": "hello", "token": token})
        async with gate:
            conn = await open_connection(host, port, ROOM, hello, stats, factory=Buyer)
        assert isinstance(conn, Buyer)
        return conn

    host = await one(0, "host", "gb-host", None)
    buyers = await asyncio.gather(
        *(one(i, "viewer", f"user-{i}", f"c{i % communities}") for i in range(users))
    )
    for i in range(min(communities, users)):
        buyers[i].observer = True  # user i is in community i: one observer per community
    return host, list(buyers)


async def _round(
    host: Buyer, buyers: list[Buyer], communities: int, rng: random.Random,
    latencies: list[float], members: dict[tuple[str, str], set[str]], rate: float,
) -> tuple[str, int]:  # fmt: skip
    """One group buy: everyone joins (with retries, leaves, rejoins), users starting
    at ``rate`` per second (open loop). Returns (gb, joins)."""
    per_community = max(1, len(buyers) // communities)
    target = max(2, per_community - 1 if rng.random() < 0.5 else per_community + 5)
    opened = await host.request(
        "groupbuy_open", product="Benchmark peaches", price_cents=2990, target=target,
        duration_s=3600, max_qty=3,
    )  # fmt: skip
    gb = opened["gb"]
    sent = 0

    started = time.monotonic()

    async def act(i: int, buyer: Buyer, start: float) -> None:
        nonlocal sent
        await asyncio.sleep(max(0.0, started + start - time.monotonic()))
        user, group = f"user-{i}", f"c{i % communities}"
        plan = ["join"] + (["join"] if rng.random() < 0.3 else [])
        if rng.random() < 0.1:
            plan += ["leave"] + (["join"] if rng.random() < 0.5 else [])
        for step in plan:
            fields = {"gb": gb, "qty": 1} if step == "join" else {"gb": gb}
            answer = await buyer.request(f"groupbuy_{step}", **fields)
            sent += step == "join"
            latencies.append(answer["latency_ms"])
            if answer["t"] == "ack":
                (members.setdefault((gb, group), set()).add if step == "join"
                 else members.setdefault((gb, group), set()).discard)(user)  # fmt: skip
            elif answer.get("code") != "group_formed":
                raise RuntimeError(f"{step} refused: {answer}")

    order = list(range(len(buyers)))
    rng.shuffle(order)
    await asyncio.gather(*(act(i, buyers[i], k / rate) for k, i in enumerate(order)))
    return gb, sent


async def _check(
    cluster: Cluster, observers: list[Buyer], members: dict[tuple[str, str], set[str]],
    targets: dict[str, int],
) -> dict[str, Any]:  # fmt: skip
    assert cluster.redis_url, "the exactness check reads Valkey: give --redis with --target"
    store = await open_store(cluster.redis_url)
    exact = True
    formed_expected = 0
    try:
        await asyncio.sleep(1.0)  # the last pushes (≤ 10/s per group) arrive
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for observer in observers:
            seen.update(observer.seen)
        for (gb, group), expected in members.items():
            n = int(await store.hget(keys.room(ROOM, f"gb:{gb}:g:{group}"), "n") or 0)
            distinct = await store.hlen(keys.room(ROOM, f"gb:{gb}:m:{group}"))
            pushed = seen.get((gb, group), {}).get("n")
            if not n == distinct == len(expected) == pushed:
                exact = False
                log(f"  mismatch {gb}/{group}: valkey n={n} distinct={distinct} "
                    f"acks={len(expected)} pushed={pushed}")  # fmt: skip
            formed_expected += len(expected) >= targets[gb]
        formed: Counter[tuple[str, str]] = Counter()
        entries: Any = await store.xrange(keys.room(ROOM, "events"))
        for _, fields in entries:
            event = msgpack.unpackb(fields[b"d"], raw=False)
            if event.get("t") == "groupbuy_formed":
                formed[(event["gb"], event["group"])] += 1
    finally:
        await store.aclose()
    return {
        "exact": exact,
        "formed_events": sum(formed.values()),
        "formed_expected": formed_expected,
        "duplicate_formed": sum(c - 1 for c in formed.values()),
    }


async def _run(
    cluster: Cluster, users: int, communities: int, duration: float, rate: float,
    plot: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    pin(0, LOAD_CPU)
    cluster.create_room(ROOM)
    host, buyers = await _connect(cluster, users, communities)
    log(f"  connected {len(buyers)} users in {communities} communities; joining")
    rng = random.Random(42)
    latencies: list[float] = []
    members: dict[tuple[str, str], set[str]] = {}
    targets: dict[str, int] = {}
    joins = 0
    watched = [[psutil.Process()], cluster.processes(), cluster.store_processes()]
    cpu0 = [cpu_seconds(procs) for procs in watched]
    machine = MachineCpu()
    started = time.monotonic()
    while time.monotonic() - started < duration:
        gb, sent = await _round(host, buyers, communities, rng, latencies, members, rate)
        targets[gb] = 0
        joins += sent
        log(f"  round {len(targets)}: {joins} joins, {time.monotonic() - started:.1f} s")
    elapsed = time.monotonic() - started
    load, nodes, valkey = (
        100 * (cpu_seconds(p) - c) / elapsed for p, c in zip(watched, cpu0, strict=True)
    )
    others = machine.others_pct(load + nodes + valkey)
    log(f"  CPU while joining: load generator {load:.0f}%, nodes {nodes:.0f}%, "
        f"store ({cluster.store}) {valkey:.0f}%; per join: nodes "
        f"{1e4 * nodes / max(1, joins / elapsed):.1f} µs, store "
        f"{1e4 * valkey / max(1, joins / elapsed):.1f} µs")  # fmt: skip
    report_others(others)
    assert cluster.redis_url, "the exactness check reads Valkey: give --redis with --target"
    store = await open_store(cluster.redis_url)
    for gb in targets:
        targets[gb] = int(await store.hget(keys.room(ROOM, f"gb:{gb}"), "target") or 0)
    await store.aclose()
    result = await _check(cluster, [b for b in buyers if b.observer], members, targets)
    if plot is not None:
        title = f"Group-buy ack latency, {len(buyers)} users, {rate:g} users/s"
        log(f"  plot: {write_cdf(plot, {'join/leave ack': latencies}, title=title, xlabel='ms')}")
    for conn in [host, *buyers]:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "store": cluster.store,
        "joins_sent": joins,
        "joins_per_s": round(joins / elapsed, 1),
        "ack_latency_ms": {
            "p50": round(percentile(latencies, 0.5) or 0.0, 2),
            "p99": round(percentile(latencies, 0.99) or 0.0, 2),
        },
        **result,
        "load_cpu_pct": round(load, 1),
        "node_us_per_join": round(1e4 * nodes / max(1, joins / elapsed), 1),
        "store_us_per_join": round(1e4 * valkey / max(1, joins / elapsed), 1),
        "others_cpu_pct": round(others, 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests groupbuy", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--users", type=int, default=2000, help="neighbours connected")
    parser.add_argument("--communities", type=int, default=20, help="compounds they live in")
    parser.add_argument("--nodes", type=int, default=2, help="local nodes to start")
    parser.add_argument("--duration", type=float, default=10, help="seconds of rounds")
    parser.add_argument(
        "--rate",
        type=float,
        default=5000,
        help="users starting their joins per second (open loop)",
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="URL",
        help="use running node(s) on loopback instead of starting them",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="with --target: the nodes' Valkey, read for the exactness check",
    )
    add_cluster_option(parser)
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.svg",
        help="also draw the ack latency distribution (CDF) as SVG",
    )
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        metavar="MS",
        help="a bound on ack p99: a valid run above it lists it in slo_missed, exit 99",
    )
    args = parser.parse_args(argv)
    if args.max_p99_ms is not None and args.max_p99_ms <= 0:
        parser.error("--max-p99-ms must be positive")
    if args.cluster and not 3 <= args.cluster <= 16:
        parser.error("--cluster must be 3..16 primaries")
    if not 2 <= args.users <= PER_WORKER or not 1 <= args.communities <= args.users:
        parser.error(f"--users must be 2..{PER_WORKER}, --communities 1..users")
    if not 0 < args.duration <= 600 or not 1 <= args.nodes <= 8:
        parser.error("--duration must be 0..600 s and --nodes 1..8")
    log(f"groupbuy: {args.users} users, {args.communities} communities, {args.nodes} node(s)")
    return run_verdict("groupbuy", lambda: _measure(args))


def _measure(args: argparse.Namespace) -> Outcome:
    t0 = time.monotonic()
    if args.target:
        cluster = target_cluster(args.target)
        cluster.redis_url = args.redis
        cluster.store = describe(args.redis) if args.redis else "unknown"
        result = asyncio.run(
            _run(cluster, args.users, args.communities, args.duration, args.rate, args.plot)
        )
    else:
        names = [f"c{i}" for i in range(args.communities)]
        # The benchmark measures join capacity: per-user message budgets would refuse
        # its buyers' repeated joins first.
        budget = ["--ws-message-rate", "10000"]
        with local_cluster(args.nodes, budget, communities=names, shards=args.cluster) as cluster:
            try:
                import uvloop

                result = uvloop.run(
                    _run(cluster, args.users, args.communities, args.duration, args.rate, args.plot)
                )
            except ImportError:  # pragma: no cover
                result = asyncio.run(
                    _run(cluster, args.users, args.communities, args.duration, args.rate, args.plot)
                )
    lat = result["ack_latency_ms"]
    log(
        f"groupbuy: {result['joins_sent']} joins at {result['joins_per_s']}/s, ack p50 "
        f"{lat['p50']} ms p99 {lat['p99']} ms, exact={result['exact']}, formed "
        f"{result['formed_events']}/{result['formed_expected']}, duplicate "
        f"{result['duplicate_formed']} ({time.monotonic() - t0:.0f} s)"
    )
    problems = [
        None if result["exact"] else "the group counts are not exact (see the mismatches above)",
        f"{result['duplicate_formed']} groups formed twice" if result["duplicate_formed"] else None,
        None
        if result["formed_events"] == result["formed_expected"]
        else f"{result['formed_events']} groups formed, {result['formed_expected']} expected",
        saturated(result["load_cpu_pct"], "the join rate"),
    ]
    if missed := over("ack p99", lat["p99"], args.max_p99_ms):
        result["slo_missed"] = missed
    return result, [p for p in problems if p]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
