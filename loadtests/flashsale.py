"""``python -m loadtests flashsale``: buyers racing for a flash sale's stock through K nodes.

The host pins a product and starts a flash sale (``--stock`` units, a
per-buyer ``--limit``, a short countdown); ``--buyers`` buyers, connected
round robin to the nodes, tap 抢 when the countdown ends, spread over
``--spread`` seconds as people's taps are. Each taps once; 30% resend the same
tap (a retry with the same idempotency key), 30% tap again for another unit
and 10% a third time (past a limit of 2). Prints one JSON object (last line of
stdout): ``"ok": true`` with ``store, buyers, stock, taps, sold, oversold,
limit_exceeded, ack_latency_ms {p50, p99}, refusals {code: n}, load_cpu_pct,
node_us_per_tap, store_us_per_tap, others_cpu_pct`` (CPU per tap of the nodes and
of the store over the race, which other processes disturb less than the tail),
``steal_cpu_pct`` (the hypervisor's), ``nodes_gc_in_race`` (the nodes' garbage
collections from 0.25 s before the start to the last answer, ``{generation: {n,
ms}}`` from their ``livecore_gc_pause_seconds``) and ``load_gc_ms_in_race`` (the
generator's own collections: a pause there holds answers and counts as latency);
or ``{"ok": false, "reason": ...}`` (exit 1, see ``loadtests.verdict``) when a
buyer failed to connect, a tap met a refusal other than sold out or the limit,
the sale was not sold exactly (``sold`` ≠ ``stock``, or the acks, the orders
stream and the sale's count disagree), a buyer holds more than the limit, or
the load generator was saturated.

``sold`` is the sale's own count in Valkey; ``oversold`` the units beyond the
stock by the largest of that count, the orders the shop was sent and the
units the acks granted; ``limit_exceeded`` the buyers holding more than the
limit in Valkey or by the acks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
from collections import Counter
from typing import Any

import httpx
import msgpack
import psutil

from livecore import tokens
from livecore.store import keys
from livecore.store.client import open_store
from loadtests.fanout import PER_WORKER
from loadtests.groupbuy import CONNECT_CONCURRENCY, Buyer
from loadtests.local import LOAD_CPU, Cluster, add_cluster_option, local_cluster, pin
from loadtests.serverstats import gc_between, gc_pauses
from loadtests.stats import (
    GcTimer,
    HelpFormatter,
    MachineCpu,
    cpu_seconds,
    log,
    percentile,
    report_others,
)
from loadtests.verdict import Outcome, over, saturated
from loadtests.verdict import run as run_verdict
from loadtests.wsclient import Stats, host_port, open_connection

ROOM = "flashsale"
#: Refusals a racing buyer expects; any other is a failed run.
EXPECTED = frozenset({"flash_sold_out", "flash_limit"})
COUNTDOWN_S = 2
#: The nodes' collections are read this long (s) before the sale starts, the race's window.
GC_READ_S = 0.25
#: The generator's young-generation threshold in the race (the default 700 made ~100
#: collections, 60-80 ms of paused answers in a quiet ~1 s race).
GENERATOR_YOUNG = 200_000


async def _connect(cluster: Cluster, buyers: int) -> tuple[Buyer, list[Buyer]]:
    stats = Stats()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int, role: str, user: str) -> Buyer:
        host, port = host_port(cluster.urls[i % len(cluster.urls)])
        token = tokens.mint(cluster.secret, role=tokens.Role(role), room=ROOM, user=user,
                            ttl_s=3600)  # fmt: skip
        async with gate:
            conn = await open_connection(
                host, port, ROOM, msgpack.packb({"t": "hello", "token": token}), stats,
                factory=Buyer,
            )  # fmt: skip
        assert isinstance(conn, Buyer)
        return conn

    host = await one(0, "host", "flash-host")
    return host, list(await asyncio.gather(*(one(i, "viewer", f"b{i}") for i in range(buyers))))


async def _race(
    buyers: list[Buyer], fs: str, starts_at: int, spread: float, rng: random.Random
) -> tuple[list[float], Counter[str], dict[str, int]]:
    """Every buyer's taps; (ack latencies, refusals by code, units granted per buyer)."""
    latencies: list[float] = []
    #: (seconds after the start the tap was sent, its latency): the tail by phase
    phases: list[tuple[float, float]] = []
    refusals: Counter[str] = Counter()
    granted: dict[str, int] = {}
    #: how late (ms) the generator sent each buyer's first tap against its plan
    late: list[float] = []
    plans = []
    for i in range(len(buyers)):
        plan = ["k1"] + (["k1"] if rng.random() < 0.3 else [])
        plan += ["k2"] if rng.random() < 0.3 else []
        plan += ["k3"] if rng.random() < 0.1 else []
        plans.append((rng.random() * spread, plan, f"b{i}"))

    async def taps(buyer: Buyer, at: float, plan: list[str], user: str) -> None:
        await asyncio.sleep(max(0.0, starts_at + at - time.time()))
        late.append(1000 * (time.time() - starts_at - at))
        for key in plan:
            sent = time.time() - starts_at
            answer = await buyer.request("flash_buy", fs=fs, qty=1, key=key)
            while answer.get("code") == "flash_not_started":  # this machine's clock, to the ms
                await asyncio.sleep(0.01)
                answer = await buyer.request("flash_buy", fs=fs, qty=1, key=key)
            latencies.append(answer["latency_ms"])
            phases.append((sent, answer["latency_ms"]))
            if answer["t"] == "ack":
                granted[user] = answer["mine"]
            else:
                refusals[str(answer.get("code"))] += 1

    await asyncio.gather(*(taps(b, at, plan, user) for b, (at, plan, user) in
                           zip(buyers, plans, strict=True)))  # fmt: skip
    _log_phases(phases)
    log(f"  the generator sent first taps late by p50 {percentile(late, 0.5) or 0:.1f} ms, "
        f"p99 {percentile(late, 0.99) or 0:.1f} ms, max {max(late, default=0):.1f} ms")  # fmt: skip
    return latencies, refusals, granted


def _log_phases(phases: list[tuple[float, float]], step: float = 0.2) -> None:
    """Log the ack p50 / p99 / max of the taps sent in each ``step`` s of the race."""
    buckets: dict[int, list[float]] = {}
    for sent, latency in phases:
        buckets.setdefault(max(0, int(sent / step)), []).append(latency)
    parts = [
        f"{i * step:.1f}s n={len(b)} {percentile(b, 0.5) or 0:.0f}/{percentile(b, 0.99) or 0:.0f}"
        f"/{max(b):.0f}"
        for i, b in sorted(buckets.items())
    ]
    log("  ack p50/p99/max ms by when the tap was sent: " + ", ".join(parts))


async def _stored(cluster: Cluster, fs: str) -> tuple[int, int, dict[str, int]]:
    """(the sale's sold count, units in the orders stream, units per buyer) in Valkey."""
    assert cluster.redis_url
    store = await open_store(cluster.redis_url)
    try:
        sold = int(await store.hget(keys.room(ROOM, "flash"), "sold") or 0)
        ordered = 0
        entries: Any = await store.xrange(keys.room(ROOM, "orders"))
        for _, fields in entries:
            if fields.get(b"type") == b"flash" and fields.get(b"fs") == fs.encode():
                ordered += int(fields[b"qty"])
        raw = await store.hgetall(keys.room(ROOM, f"flash:{fs}:b"))
        holders = {k.decode() if isinstance(k, bytes) else str(k): int(v) for k, v in raw.items()}
    finally:
        await store.aclose()
    return sold, ordered, holders


async def _run(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    pin(0, LOAD_CPU)
    cluster.create_room(ROOM)
    host, buyers = await _connect(cluster, args.buyers)
    log(f"  connected {len(buyers)} buyers; the sale starts in {COUNTDOWN_S} s")
    await host.request("card", kind="product", name="Benchmark peaches", price_cents=2990)
    started = await host.request(
        "flash_start", price_cents=990, stock=args.stock, limit=args.limit,
        countdown_s=COUNTDOWN_S, duration_s=600,
    )  # fmt: skip
    if started["t"] != "ack":
        raise RuntimeError(f"flash_start refused: {started}")
    watched = [[psutil.Process()], cluster.processes(), cluster.store_processes()]
    # The generator's 5,000 connections out of its own collections: a pause here
    # would hold answers in its sockets and count as the server's latency.
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(GENERATOR_YOUNG, *thresholds[1:])  # the race allocates less than this
    async with httpx.AsyncClient() as client:
        await asyncio.sleep(max(0.0, started["starts_at"] - time.time() - GC_READ_S))
        gc0 = await gc_pauses(client, cluster.urls)  # the nodes' collections from here on
        await asyncio.sleep(max(0.0, started["starts_at"] - time.time()))  # CPU from the start on
        cpu0 = [cpu_seconds(procs) for procs in watched]
        machine = MachineCpu()
        t0 = time.monotonic()
        rng = random.Random(7)
        with GcTimer() as own_gc:
            latencies, refusals, granted = await _race(
                buyers, started["fs"], started["starts_at"], args.spread, rng
            )
        elapsed = time.monotonic() - t0
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        steal = machine.steal_pct()
        nodes_gc = gc_between(gc0, await gc_pauses(client, cluster.urls))
    load, nodes, valkey = (
        100 * (cpu_seconds(p) - c) / elapsed for p, c in zip(watched, cpu0, strict=True)
    )
    others = machine.others_pct(load + nodes + valkey)
    log(f"  CPU while racing ({elapsed:.1f} s): load generator {load:.0f}%, "
        f"nodes {nodes:.0f}%, store ({cluster.store}) {valkey:.0f}%")  # fmt: skip
    report_others(others)
    own = f"{own_gc.collections} ({1000 * own_gc.paused_s:.1f} ms)"
    log(f"  in the race: the nodes' collections {nodes_gc or 'none'}, the generator's "
        f"{own}, CPU steal {steal:.1f}%")  # fmt: skip
    sold, ordered, holders = await _stored(cluster, started["fs"])
    acked = sum(granted.values())
    for conn in [host, *buyers]:
        if conn.transport is not None:
            conn.transport.close()
    over_limit = {u for u, n in holders.items() if n > args.limit}
    over_limit |= {u for u, n in granted.items() if n > args.limit}
    return {
        "store": cluster.store,
        "buyers": len(buyers),
        "stock": args.stock,
        "taps": len(latencies),
        "sold": sold,
        "oversold": max(0, max(sold, ordered, acked) - args.stock),
        "limit_exceeded": len(over_limit),
        "ack_latency_ms": {
            "p50": round(percentile(latencies, 0.5) or 0.0, 2),
            "p99": round(percentile(latencies, 0.99) or 0.0, 2),
        },
        "refusals": dict(refusals),
        "load_cpu_pct": round(load, 1),
        "node_us_per_tap": round(1e4 * nodes * elapsed / max(1, len(latencies)), 1),
        "store_us_per_tap": round(1e4 * valkey * elapsed / max(1, len(latencies)), 1),
        "others_cpu_pct": round(others, 1),
        "steal_cpu_pct": round(steal, 1),
        "nodes_gc_in_race": nodes_gc,
        "load_gc_ms_in_race": round(1000 * own_gc.paused_s, 1),
        "_agree": sold == ordered == acked == sum(holders.values()),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests flashsale", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=5000, help="buyers connected")
    parser.add_argument("--stock", type=int, default=100, help="units on sale")
    parser.add_argument("--limit", type=int, default=2, help="units one buyer may buy")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds the taps spread over")
    parser.add_argument("--nodes", type=int, default=2, help="local nodes to start")
    add_cluster_option(parser)
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        metavar="MS",
        help="a bound on ack p99: a valid run above it lists it in slo_missed, exit 99",
    )
    args = parser.parse_args(argv)
    if args.cluster and not 3 <= args.cluster <= 16:
        parser.error("--cluster must be 3..16 primaries")
    if not 1 <= args.buyers <= PER_WORKER or not 1 <= args.stock <= 100_000:
        parser.error(f"--buyers must be 1..{PER_WORKER}, --stock 1..100000")
    if not 1 <= args.limit <= 99 or not 0 <= args.spread <= 60 or not 1 <= args.nodes <= 8:
        parser.error("--limit must be 1..99, --spread 0..60 s, --nodes 1..8")
    if args.max_p99_ms is not None and args.max_p99_ms <= 0:
        parser.error("--max-p99-ms must be positive")
    log(f"flashsale: {args.buyers} buyers, {args.stock} units, {args.nodes} node(s)")
    return run_verdict("flashsale", lambda: _measure(args))


def _measure(args: argparse.Namespace) -> Outcome:
    # The benchmark measures the buy path: per-user message budgets would refuse retries.
    budget = ["--ws-message-rate", "10000"]
    with local_cluster(args.nodes, budget, shards=args.cluster) as cluster:
        try:
            import uvloop

            result = uvloop.run(_run(cluster, args))
        except ImportError:  # pragma: no cover
            result = asyncio.run(_run(cluster, args))
    agree = result.pop("_agree")
    lat = result["ack_latency_ms"]
    log(f"flashsale: sold {result['sold']}/{result['stock']} to {result['buyers']} buyers, "
        f"oversold {result['oversold']}, over the limit {result['limit_exceeded']}, "
        f"{result['taps']} taps, ack p50 {lat['p50']} ms p99 {lat['p99']} ms, "
        f"refusals {result['refusals']}")  # fmt: skip
    unexpected = {c: n for c, n in result["refusals"].items() if c not in EXPECTED}
    # every buyer taps at least once: with as many buyers as units, all must go
    must_sell = result["buyers"] >= result["stock"]
    problems = [
        f"unexpected refusals: {unexpected}" if unexpected else None,
        f"{result['oversold']} units oversold" if result["oversold"] else None,
        f"{result['limit_exceeded']} buyers over the limit" if result["limit_exceeded"] else None,
        None if agree else "the sale's count, the orders and the acks disagree",
        f"sold {result['sold']} of {result['stock']}"
        if must_sell and result["sold"] != result["stock"] else None,
        saturated(result["load_cpu_pct"], "the ack latency"),
    ]  # fmt: skip
    if missed := over("ack p99", lat["p99"], args.max_p99_ms):
        result["slo_missed"] = missed
    return result, [p for p in problems if p]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
