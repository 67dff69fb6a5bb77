"""``python -m loadtests fanout``: many viewers in one room, comments in, deliveries out.

Connects N lean viewers to one room (spread over K nodes), sends R comments
per second from a few host connections for S seconds, then waits for every
viewer to catch up and prints one JSON object (last line of stdout):
``viewers_connected, sent, expected_deliveries, delivered, lost, duplicates,
latency_ms {p50, p99, max}, server_cpu_pct, server_rss_mb, rss_per_conn_kib``.

Viewers live in worker processes (at most ``PER_WORKER`` each: a process may
hold only so many sockets) pinned to the load CPU; the nodes and Valkey are
pinned to the server CPU. Latency is sender send time → viewer receive time,
measured on probe viewers (every ``SAMPLE_EVERY``-th, in a process of their
own) that decode batches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgpack
import psutil

from loadtests.local import LOAD_CPU, Cluster, local_cluster, pin, target_cluster
from loadtests.plot import write_cdf
from loadtests.stats import HelpFormatter, cpu_seconds, log, percentile
from loadtests.workers import run_loop
from loadtests.wsclient import LeanConnection, Stats, host_port, open_connection

ROOM = "fanout"
PER_WORKER = 9_000
SAMPLE_EVERY = 50
#: Comments one sender connection sends per second (the node allows 20 messages/s).
PER_SENDER_RATE = 15.0
CONNECT_CONCURRENCY = 200
DRAIN_S = 15.0


class Sender(LeanConnection):
    """A host connection that counts the acks of its comments."""

    acked = 0
    errors = 0
    top = 0

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "ack" and "o" in message:
            Sender.acked += 1
            Sender.top = max(Sender.top, int(message["o"]))
        elif kind == "error":
            Sender.errors += 1
        else:
            super().on_message(message)


# -- viewers (worker processes) ---------------------------------------------------


def worker_main(
    pipe: Connection, urls: list[str], viewers: list[tuple[int, str]], probe: bool
) -> None:
    pin(os.getpid(), LOAD_CPU)
    run_loop(lambda: _worker(pipe, urls, viewers, probe))


async def _worker(
    pipe: Connection, urls: list[str], viewers: list[tuple[int, str]], probe: bool
) -> None:
    """Join ``viewers`` (index, token), report, wait for the final offset, count."""
    stats = Stats()
    conns: list[LeanConnection] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def join(i: int, token: str) -> None:
        host, port = host_port(urls[i % len(urls)])
        hello = msgpack.packb({"t": "hello", "token": token})
        async with gate:
            try:
                conn = await open_connection(host, port, ROOM, hello, stats, sampled=probe)
            except (OSError, ConnectionError, TimeoutError):
                stats.failed += 1
                return
        conns.append(conn)
        stats.joined += 1

    await asyncio.gather(*(join(i, t) for i, t in viewers))
    pipe.send({"joined": stats.joined, "failed": stats.failed})
    final = await asyncio.to_thread(pipe.recv)  # the last offset, once sending stops
    deadline = time.monotonic() + DRAIN_S
    behind = [c for c in conns if not c.closed.done()]
    while time.monotonic() < deadline and any(c.last < final for c in behind):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    lost = stats.gaps + sum(max(0, final - c.last) for c in conns)
    closed = sum(1 for c in conns if c.closed.done())
    pipe.send({"delivered": stats.delivered, "duplicates": stats.duplicates, "lost": lost,
               "closed": closed, "latencies": stats.latencies_ms})  # fmt: skip
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


# -- the run ---------------------------------------------------------------------------


def _rss_mb(procs: list[psutil.Process]) -> float:
    return sum(p.memory_info().rss for p in procs) / 2**20


async def _send(cluster: Cluster, rate: float, duration: float) -> tuple[int, int, int]:
    """Send ``rate`` comments/s for ``duration`` s; returns (acked, errors, last offset)."""
    senders_n = max(1, math.ceil(rate / PER_SENDER_RATE))
    stats = Stats()
    senders: list[LeanConnection] = []
    for i in range(senders_n):
        host, port = host_port(cluster.urls[i % len(cluster.urls)])
        token = cluster.token("host", f"sender-{i}", ROOM)
        hello = msgpack.packb({"t": "hello", "token": token})
        senders.append(await open_connection(host, port, ROOM, hello, stats, factory=Sender))
    total = int(rate * duration)
    started = time.monotonic()
    for seq in range(total):
        due = started + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = {"t": "comment", "id": seq, "text": f"comment {seq}",
                   "cid": f"{seq}-{time.time_ns()}"}  # fmt: skip
        senders[seq % senders_n].send(msgpack.packb(payload))
        if seq and seq % int(rate) == 0:
            log(f"  sending: {seq}/{total} comments, {time.monotonic() - started:.0f} s")
    deadline = time.monotonic() + 10
    while Sender.acked + Sender.errors < total and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for sender in senders:
        if sender.transport is not None:
            sender.transport.close()
    return Sender.acked, Sender.errors, Sender.top


def run(
    cluster: Cluster, viewers: int, rate: float, duration: float, plot: Path | None = None
) -> dict[str, Any]:
    cluster.create_room(ROOM)
    procs = cluster.processes()
    rss_before = _rss_mb(procs) if procs else 0.0
    # Latency probes (every SAMPLE_EVERY-th viewer) get a process of their own, so
    # what they measure is the server, not a load process busy with thousands of
    # other sockets; the rest are spread over processes of at most PER_WORKER.
    tokens = [(i, cluster.token("viewer", f"viewer-{i}", ROOM)) for i in range(viewers)]
    groups = [(tokens[::SAMPLE_EVERY], True)]
    rest = [t for t in tokens if t[0] % SAMPLE_EVERY]
    parts = math.ceil(len(rest) / PER_WORKER)
    groups += [(rest[w::parts], False) for w in range(parts)]
    ctx = mp.get_context("spawn")
    pipes, workers = [], []
    log(f"fanout: {viewers} viewers over {len(cluster.urls)} node(s), {len(groups)} load processes")
    for group, probe in groups:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=worker_main, args=(theirs, cluster.urls, group, probe), daemon=True
        )
        proc.start()
        pipes.append(mine)
        workers.append(proc)
    joined = failed = 0
    for pipe in pipes:
        if not pipe.poll(600):
            raise RuntimeError("a load process did not finish connecting in 10 minutes")
        report = pipe.recv()
        joined, failed = joined + report["joined"], failed + report["failed"]
    log(f"  connected {joined} viewers ({failed} failed)")
    rss_connected = _rss_mb(procs) if procs else 0.0
    load = [psutil.Process(w.pid) for w in workers if w.pid is not None]
    cpu0, load0, wall0 = cpu_seconds(procs), cpu_seconds(load), time.monotonic()
    acked, errors, top = asyncio.run(_send(cluster, rate, duration))
    cpu1, load1, wall1 = cpu_seconds(procs), cpu_seconds(load), time.monotonic()
    log(f"  load generator CPU while sending: {100 * (load1 - load0) / (wall1 - wall0):.0f}%")
    log(f"  sent {acked} comments ({errors} refused); draining")
    for pipe in pipes:
        pipe.send(top)
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
    return {
        "viewers_connected": joined,
        "sent": acked,
        "expected_deliveries": acked * joined,
        "delivered": delivered,
        "lost": sum(r["lost"] for r in results if r),
        "duplicates": sum(r["duplicates"] for r in results if r),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) or 0.0, 1),
            "p99": round(percentile(latencies, 0.99) or 0.0, 1),
            "max": round(max(latencies, default=0.0), 1),
        },
        "server_cpu_pct": round(100 * (cpu1 - cpu0) / max(1e-9, wall1 - wall0), 1),
        "server_rss_mb": round(rss_connected, 1),
        "rss_per_conn_kib": round(1024 * (rss_connected - rss_before) / max(1, joined), 2),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests fanout", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=2000, help="viewers in the room")
    parser.add_argument("--rate", type=float, default=100, help="comments per second in")
    parser.add_argument("--duration", type=float, default=10, help="seconds of sending")
    parser.add_argument(
        "--nodes", type=int, default=1, help="nodes to start (ignored with --target)"
    )
    parser.add_argument(
        "--target",
        action="append",
        metavar="URL",
        help="use running node(s) on loopback instead of starting them",
    )
    parser.add_argument("--tick-ms", type=int, default=None, help="nodes' broadcast tick")
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.svg",
        help="also draw the latency distribution (CDF) as SVG",
    )
    args = parser.parse_args(argv)  # fmt: skip
    if not 1 <= args.viewers <= 100_000 or not 0 < args.rate <= 10_000:
        parser.error("--viewers must be 1..100000 and --rate 0..10000")
    if not 0 < args.duration <= 600 or not 1 <= args.nodes <= 8:
        parser.error("--duration must be 0..600 s and --nodes 1..8")
    extra = ["--tick-ms", str(args.tick_ms)] if args.tick_ms else []
    started = time.monotonic()
    if args.target:
        result = run(target_cluster(args.target), args.viewers, args.rate, args.duration, args.plot)
    else:
        with local_cluster(args.nodes, extra) as cluster:
            result = run(cluster, args.viewers, args.rate, args.duration, args.plot)
    lat = result["latency_ms"]
    log(
        f"fanout: {result['viewers_connected']} viewers, {result['sent']} comments → "
        f"{result['delivered']}/{result['expected_deliveries']} delivered, lost {result['lost']}, "
        f"dup {result['duplicates']}, latency p50 {lat['p50']} ms p99 {lat['p99']} ms, "
        f"server CPU {result['server_cpu_pct']}%, {result['rss_per_conn_kib']} KiB/conn "
        f"({time.monotonic() - started:.0f} s)"
    )
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1
