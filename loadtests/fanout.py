"""``python -m loadtests fanout``: many viewers in one room (or N), comments in, deliveries out.

Connects V lean viewers to one room (spread over K nodes), sends R comments
per second from a few host connections for S seconds, then waits for every
viewer to catch up and prints one JSON object (last line of stdout):
``store, rooms, viewers_connected, sent, expected_deliveries, delivered, lost,
duplicates, latency_ms {p50, p99, max}, server_cpu_pct, server_rss_mb,
rss_per_conn_kib, load_cpu_pct, server_ns_per_delivery, others_cpu_pct`` (the
nodes' CPU per delivered comment, and the CPU other processes of a shared
machine took while sending), and ``rooms_per_shard`` on a Valkey Cluster (how
many of the rooms each primary holds, primaries in slot order), and
``slo_missed`` (exit code 99) when latency p99 was above ``--max-p99-ms``, under
``"ok": true``. The run is invalid (``{"ok": false, "reason": ...}``, no
figures, exit code 1; see ``loadtests.verdict``) when a viewer failed to
connect (it stops there), a comment was refused, a viewer was disconnected,
a delivery was lost or doubled, or the load core was saturated while sending
(``load_cpu_pct``, the viewers' processes on the load CPU: the latency would
be theirs).

With ``--rooms N`` the viewers are spread evenly over N rooms (viewer i in
room i mod N) and the R comments/s go round-robin over them; every viewer
must get every comment of its own room exactly once (the same
per-connection offset checks), and ``expected_deliveries`` sums each room's
acked comments times its viewers. ``--cluster P`` runs the local nodes on a
Valkey Cluster of P primaries, so the rooms spread over P shards.

Viewers live in worker processes (at most ``PER_WORKER`` each: a process may
hold only so many sockets) pinned to the load CPU; the nodes and Valkey are
pinned to the server CPU. Latency is sender send time → viewer receive time,
measured on probe viewers (every ``SAMPLE_EVERY``-th of each room, in a
process of their own) that decode batches.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgpack
import psutil

from loadtests.fanoutsend import Sent, room_names, send
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
from loadtests.verdict import Invalid, Outcome, over, saturated
from loadtests.verdict import run as run_verdict
from loadtests.workers import run_loop
from loadtests.wsclient import LeanConnection, Stats, host_port, open_connection

PER_WORKER = 9_000
SAMPLE_EVERY = 50
CONNECT_CONCURRENCY = 200
DRAIN_S = 15.0

#: A viewer as a load process gets it: (index, room, token).
Viewer = tuple[int, str, str]


# -- viewers (worker processes) ---------------------------------------------------


def worker_main(pipe: Connection, urls: list[str], viewers: list[Viewer], probe: bool) -> None:
    pin(os.getpid(), LOAD_CPU)
    run_loop(lambda: _worker(pipe, urls, viewers, probe))


async def _worker(pipe: Connection, urls: list[str], viewers: list[Viewer], probe: bool) -> None:
    """Join ``viewers``, report, wait for each room's final offset, count."""
    stats = Stats()
    conns: list[tuple[str, LeanConnection]] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def join(i: int, room: str, token: str) -> None:
        host, port = host_port(urls[i % len(urls)])
        hello = msgpack.packb({"t": "hello", "token": token})
        async with gate:
            try:
                conn = await open_connection(host, port, room, hello, stats, sampled=probe)
            except (OSError, ConnectionError, TimeoutError):
                stats.failed += 1
                return
        conns.append((room, conn))
        stats.joined += 1

    await asyncio.gather(*(join(i, room, t) for i, room, t in viewers))
    rooms = Counter(room for room, _ in conns)
    pipe.send({"joined": stats.joined, "failed": stats.failed, "rooms": dict(rooms)})
    final: dict[str, int] = await asyncio.to_thread(pipe.recv)  # room → last offset
    deadline = time.monotonic() + DRAIN_S
    behind = [(final.get(r, 0), c) for r, c in conns if not c.closed.done()]
    while time.monotonic() < deadline and any(c.last < top for top, c in behind):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    lost = stats.gaps + sum(max(0, final.get(r, 0) - c.last) for r, c in conns)
    closed = sum(1 for _, c in conns if c.closed.done())
    pipe.send({"delivered": stats.delivered, "duplicates": stats.duplicates, "lost": lost,
               "closed": closed, "latencies": stats.latencies_ms})  # fmt: skip
    for _, conn in conns:
        if conn.transport is not None:
            conn.transport.close()


# -- the run ---------------------------------------------------------------------------


def _rss_mb(procs: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in procs) / 2**20


def viewer_groups(
    cluster: Cluster, viewers: int, rooms: list[str]
) -> list[tuple[list[Viewer], bool]]:
    """Viewer i in room i mod N. Latency probes (every SAMPLE_EVERY-th viewer of each
    room) get a process of their own, so what they measure is the server, not a load
    process busy with thousands of other sockets; the rest are spread over processes
    of at most PER_WORKER."""
    n = len(rooms)
    tokens = [(i, rooms[i % n], cluster.token("viewer", f"viewer-{i}", rooms[i % n]))
              for i in range(viewers)]  # fmt: skip
    probes = [t for t in tokens if (t[0] // n) % SAMPLE_EVERY == 0]
    rest = [t for t in tokens if (t[0] // n) % SAMPLE_EVERY]
    parts = math.ceil(len(rest) / PER_WORKER)
    return [(probes, True)] + [(rest[w::parts], False) for w in range(parts)]


def run(
    cluster: Cluster, viewers: int, rate: float, duration: float, plot: Path | None = None,
    rooms: int = 1,
) -> Outcome:  # fmt: skip
    names = room_names(rooms)
    for room in names:
        cluster.create_room(room)
    spread = cluster.rooms_per_shard(names)
    if spread is not None:
        log(f"fanout: {rooms} room(s) over {len(spread)} shards: {spread}")
    procs, store_procs = cluster.processes(), cluster.store_processes()
    rss_before = _rss_mb(procs) if procs else 0.0
    groups = viewer_groups(cluster, viewers, names)
    ctx = mp.get_context("spawn")
    pipes, workers = [], []
    log(f"fanout: {viewers} viewers in {rooms} room(s) over {len(cluster.urls)} node(s), "
        f"{len(groups)} load processes")  # fmt: skip
    for group, probe in groups:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=worker_main, args=(theirs, cluster.urls, group, probe), daemon=True
        )
        proc.start()
        pipes.append(mine)
        workers.append(proc)
    joined = failed = 0
    per_room: Counter[str] = Counter()
    for pipe in pipes:
        if not pipe.poll(600):
            raise RuntimeError("a load process did not finish connecting in 10 minutes")
        report = pipe.recv()
        joined, failed = joined + report["joined"], failed + report["failed"]
        per_room.update(report["rooms"])
    log(f"  connected {joined} viewers ({failed} failed)")
    if failed or joined < viewers:
        for proc in workers:
            proc.terminate()
        raise Invalid(f"{viewers - joined} of {viewers} viewers failed to connect")
    rss_connected = _rss_mb(procs) if procs else 0.0
    load = [psutil.Process(w.pid) for w in workers if w.pid is not None]  # all on the load CPU
    cpu0, store0 = cpu_seconds(procs), cpu_seconds(store_procs)
    load0, wall0 = cpu_seconds(load), time.monotonic()
    machine = MachineCpu()
    sent = asyncio.run(send(cluster, names, rate, duration))
    cpu1, store1 = cpu_seconds(procs), cpu_seconds(store_procs)
    load1, wall1 = cpu_seconds(load), time.monotonic()
    wall = max(1e-9, wall1 - wall0)
    load_pct = 100 * (load1 - load0) / wall
    store_pct = 100 * (store1 - store0) / wall
    others = machine.others_pct(load_pct + store_pct + 100 * (cpu1 - cpu0) / wall)
    log(f"  load generator CPU while sending: {load_pct:.0f}%, "
        f"store ({cluster.store}) CPU: {store_pct:.0f}%")  # fmt: skip
    report_others(others)
    acked = sum(s.acked for s in sent.values())
    log(f"  sent {acked} comments ({sum(s.errors for s in sent.values())} refused); draining")
    for pipe in pipes:
        pipe.send({room: s.top for room, s in sent.items()})
    results = [pipe.recv() if pipe.poll(DRAIN_S + 60) else None for pipe in pipes]
    for proc in workers:
        proc.join(10)
    if any(r is None for r in results):
        raise RuntimeError("a load process did not report")
    latencies = [x for r in results if r for x in r["latencies"]]
    if plot is not None:
        title = f"Comment latency, {joined} viewers, {rate:g} comments/s"
        log(f"  plot: {write_cdf(plot, {'send → receive': latencies}, title=title, xlabel='ms')}")
    delivered = sum(r["delivered"] for r in results if r)
    refused = sum(s.errors for s in sent.values())
    lost = sum(r["lost"] for r in results if r)
    duplicates = sum(r["duplicates"] for r in results if r)
    closed = sum(r["closed"] for r in results if r)
    problems = [
        f"{refused} comments were refused ({_codes(sent)})" if refused else None,
        f"{closed} viewers were disconnected during the run" if closed else None,
        f"{lost} deliveries lost" if lost else None,
        f"{duplicates} deliveries doubled" if duplicates else None,
        saturated(load_pct, "the latency"),
    ]
    return {
        "store": cluster.store,
        "rooms": rooms,
        **({"rooms_per_shard": spread} if spread is not None else {}),
        "viewers_connected": joined,
        "sent": acked,
        "expected_deliveries": sum(s.acked * per_room[room] for room, s in sent.items()),
        "delivered": delivered,
        "lost": lost,
        "duplicates": duplicates,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) or 0.0, 1),
            "p99": round(percentile(latencies, 0.99) or 0.0, 1),
            "max": round(max(latencies, default=0.0), 1),
        },
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / wall, 1),
        "server_rss_mb": round(rss_connected, 1),
        "rss_per_conn_kib": round(1024 * (rss_connected - rss_before) / max(1, joined), 2),
        "load_cpu_pct": round(load_pct, 1),
        "server_ns_per_delivery": round(1e9 * (cpu1 - cpu0) / max(1, delivered), 1),
        "others_cpu_pct": round(others, 1),
    }, [p for p in problems if p]


def _codes(sent: dict[str, Sent]) -> str:
    """The refusals' error codes with their counts, most frequent first."""
    codes: Counter[str] = sum((s.codes for s in sent.values()), Counter())
    return ", ".join(f"{code} {n}" for code, n in codes.most_common())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests fanout", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=2000, help="viewers, over all rooms")
    parser.add_argument("--rooms", type=int, default=1, help="rooms the viewers spread over")
    parser.add_argument("--rate", type=float, default=100,
                        help="comments per second in, over all rooms")  # fmt: skip
    parser.add_argument("--duration", type=float, default=10, help="seconds of sending")
    parser.add_argument(
        "--nodes", type=int, default=1, help="nodes to start (ignored with --target)"
    )
    add_cluster_option(parser)
    parser.add_argument(
        "--target",
        action="append",
        metavar="URL",
        help="use running node(s) on loopback instead of starting them",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="each node as `serve --workers N`, run after the same fan-out against one "
        "process (side by side in the result: one_worker, workers_p99_ratio)",
    )
    parser.add_argument("--tick-ms", type=int, default=None, help="nodes' broadcast tick")
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.svg",
        help="also draw the latency distribution (CDF) as SVG",
    )
    parser.add_argument(
        "--max-p99-ms",
        type=float,
        metavar="MS",
        help="a bound on latency p99: a valid run above it lists it in slo_missed, exit 99",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if args.max_p99_ms is not None and args.max_p99_ms <= 0:
        parser.error("--max-p99-ms must be positive")
    if not 1 <= args.viewers <= 100_000 or not 0 < args.rate <= 10_000:
        parser.error("--viewers must be 1..100000 and --rate 0..10000")
    if not 0 < args.duration <= 600 or not 1 <= args.nodes <= 8:
        parser.error("--duration must be 0..600 s and --nodes 1..8")
    if not 1 <= args.rooms <= min(1000, args.viewers):
        parser.error("--rooms must be 1..1000 and at most --viewers")
    if int(args.rate * args.duration) < args.rooms:
        parser.error("--rate × --duration must give every room at least one comment")
    if not 1 <= args.workers <= 64 or (args.workers > 1 and args.target):
        parser.error("--workers must be 1..64, and cannot go with --target")
    if args.cluster and (not 3 <= args.cluster <= 16 or args.target):
        parser.error("--cluster must be 3..16 primaries, and cannot go with --target")
    extra = ["--tick-ms", str(args.tick_ms)] if args.tick_ms else []
    started = time.monotonic()

    def body() -> Outcome:
        if args.target:
            cluster = target_cluster(args.target)
            cluster.store = "unknown"  # someone else's nodes: their store is not known here
            outcome = run(cluster, args.viewers, args.rate, args.duration, args.plot, args.rooms)
        else:
            one: dict[str, Any] | None = None
            if args.workers > 1:  # the same fan-out against one process first
                with local_cluster(args.nodes, extra, shards=args.cluster) as cluster:
                    base, problems = run(cluster, args.viewers, args.rate, args.duration,
                                         None, args.rooms)  # fmt: skip
                if problems:
                    return base, [f"one worker: {p}" for p in problems]
                one = {k: base[k] for k in ("latency_ms", "server_cpu_pct", "delivered", "lost")}
            with local_cluster(args.nodes, extra, shards=args.cluster,
                               workers=args.workers) as cluster:  # fmt: skip
                outcome = run(cluster, args.viewers, args.rate, args.duration, args.plot,
                              args.rooms)  # fmt: skip
            if one is not None:
                outcome[0]["workers"] = args.workers
                outcome[0]["one_worker"] = one
                p99 = one["latency_ms"]["p99"]
                ratio = outcome[0]["latency_ms"]["p99"] / p99 if p99 else None
                outcome[0]["workers_p99_ratio"] = None if ratio is None else round(ratio, 2)
        result = outcome[0]
        lat = result["latency_ms"]
        log(
            f"fanout: {result['viewers_connected']} viewers in {result['rooms']} room(s) "
            f"({result['store']}), {result['sent']} comments → "
            f"{result['delivered']}/{result['expected_deliveries']} delivered, lost "
            f"{result['lost']}, dup {result['duplicates']}, latency p50 {lat['p50']} ms "
            f"p99 {lat['p99']} ms, server CPU {result['server_cpu_pct']}%, "
            f"{result['rss_per_conn_kib']} KiB/conn ({time.monotonic() - started:.0f} s)"
        )
        if missed := over("latency p99", lat["p99"], args.max_p99_ms):
            result["slo_missed"] = missed
        return outcome

    return run_verdict("fanout", body)
