"""``python -m loadtests replay``: play a recorded (or synthetic) audience against your nodes.

Takes a trace (``--trace``; default: the sample shipped with livecore, a
10-minute synthetic live-commerce session), multiplies its audience by
``--scale`` (each viewer becomes K viewers doing the same things at the same
moments), plays it ``--speed`` times faster for ``--duration`` seconds of
wall time, and spreads the viewers over the nodes of ``--target`` (default:
it starts a private Valkey and a node on this machine). The host's actions
(product pins, price drops, polls, group buys) are played by one host
connection. Viewers speak the raw protocol; one in ``--sample-every`` decodes
every broadcast to time it from the comment's send (latency).

While it runs, a progress line on stderr shows connected clients, messages
sent, events delivered and the last second's p99 latency. At the end: a
readable summary on stderr, an HTML report (``--report``, plots inline, opens
offline), and the result object as the last line of stdout, with ``"ok":
true``: ``clients_established, clients_failed, reconnects, sent, acked,
delivered, duplicates, lost, latency_ms {p50, p95, p99, max}, errors,
errors_by_code, event_mix_error_pct {kind: %}, event_mix, skipped,
interarrival_ks, delivered_per_s_peak, server_cpu_pct, server_rss_mb,
wall_s, report`` (and ``slo_missed`` when an SLO was missed). An invalid run
prints ``{"ok": false, "reason": ...}`` with no figures (see
``loadtests.verdict``): it crashed, a client failed to connect, or the set-up
refused what the audience did (``rate_limited``, ``unknown_community``,
token errors: the run measured the limits, not the server).

Exit codes: 0 all good; 1 an invalid run; 2 bad options (also a non-loopback
target without ``--allow-remote``); 99 a valid run missed an SLO given with
``--slo``.

Speed multiplies every viewer's own rate too: past about 10× heavy
commenters meet the server's per-viewer comment limit (``rate_limited``);
raise ``--scale`` rather than ``--speed`` to add load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from livecore.audience.trace import HOST, Kind, Trace, TraceError, read_trace
from loadtests import report, slo, verdict
from loadtests.local import LOAD_CPU, Cluster, local_cluster, non_loopback, target_cluster
from loadtests.replayclient import Counters, HostConnection, connect_host
from loadtests.replaystats import summarise
from loadtests.replayworker import ReplaySpec, worker_main
from loadtests.stats import cpu_seconds, log
from loadtests.workers import Worker, collect, run_loop
from loadtests.wsclient import host_port

SAMPLE_TRACE = Path(__file__).resolve().parent / "data" / "sample.lctrace"
MAX_CLIENTS = 200_000
LEAD_S = 2.0
"""Seconds between spawning the load processes and the first event (they read the trace)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests replay", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add = parser.add_argument
    add("--trace", type=Path, default=SAMPLE_TRACE, help="trace file (default: the sample)")
    add("--target", metavar="URL[,URL...]",
        help="running node(s); needs $LIVECORE_SECRET. Default: start a local node")  # fmt: skip
    add("--allow-remote", action="store_true", help="allow targets that are not loopback")
    add("--scale", type=int, default=1, help="audience multiplier K (default 1)")
    add("--speed", type=float, default=1.0, help="play X times faster (default 1)")
    add("--duration", type=float, default=60.0, help="wall seconds to play (default 60)")
    add("--room", default="replay", help="room to play in (created if new; default replay)")
    add("--slo", type=slo.parse, default={}, metavar="NAME=LIMIT,...",
        help="fail (exit 99) above these limits: " + slo.help_text())  # fmt: skip
    add("--report", type=Path, help="HTML report path (default: a new file in the temp dir)")
    add("--cores", help="CPUs for the load processes, e.g. 1 or 2,3 (default: CPU 1 when "
        "local, else all)")  # fmt: skip
    add("--workers", type=int, help="load processes (default: one per core)")
    add("--nodes", type=int, default=1, help="local nodes to start (default 1)")
    add("--sample-every", type=int, default=50, help="1 in N viewers times latency (default 50)")
    add("--json", action="store_true", help="print the JSON result (always the last line)")
    args = parser.parse_args(argv)
    args.urls = [u.strip() for u in (args.target or "").split(",") if u.strip()]
    bad = non_loopback(args.urls)
    if bad and not args.allow_remote:
        parser.error(f"refusing non-loopback target {', '.join(bad)} (add --allow-remote if "
                     "you own it)")  # fmt: skip
    if not 1 <= args.scale <= 1000 or not 0.1 <= args.speed <= 100:
        parser.error("--scale must be 1..1000 and --speed 0.1..100")
    if not 1 <= args.duration <= 3600 or not 1 <= args.nodes <= 8:
        parser.error("--duration must be 1..3600 s and --nodes 1..8")
    if not 1 <= args.sample_every <= 100_000:
        parser.error("--sample-every must be 1..100000")
    try:
        args.core_list = [int(c) for c in args.cores.split(",")] if args.cores else None
    except ValueError:
        parser.error("--cores takes CPU numbers, e.g. 1,2")
    return args


def _cores(args: argparse.Namespace, local: bool) -> list[int | None]:
    if args.core_list:
        return list(args.core_list)
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if local:
        return [LOAD_CPU] if LOAD_CPU in available else [None]
    return list(available) or [None]


async def _setup_host(
    cluster: Cluster, room: str, trace: Trace, window_ms: float, counters: Counters
) -> tuple[HostConnection, list[str], list[str]]:
    """Connect the host; open the polls and group buys the window will need, in order."""
    url = cluster.urls[0]
    host, port = host_port(url)
    conn = await connect_host(host, port, room,
                              cluster.token("host", "replay-host", room), counters)  # fmt: skip
    polls: list[str] = []
    gbs: list[str] = []
    for e in trace.events:
        if e.t_ms >= window_ms:
            break
        if e.kind == Kind.POLL_OPEN:
            ack = await conn.ask("poll_open", question=f"Next deal? #{len(polls) + 1}",
                                 options=["A", "B", "C"], duration_s=7200)  # fmt: skip
            polls.append(str(ack.get("poll", "")))
        elif e.kind == Kind.GROUPBUY_OPEN:
            ack = await conn.ask("groupbuy_open", product=f"Deal {len(gbs) + 1}",
                                 price_cents=int(e.value) or 1990, target=10_000,
                                 duration_s=7200)  # fmt: skip
            gbs.append(str(ack.get("gb", "")))
    return conn, polls, gbs


async def _play_host(conn: HostConnection, trace: Trace, start: float, window_s: float,
                     speed: float, sent: Counter[str]) -> None:  # fmt: skip
    """The host's on-stream actions at their moments (pins and price drops as cards)."""
    for e in trace.events:
        due = start + e.t_ms / 1000 / speed
        if due >= start + window_s:
            break
        if e.client != HOST or e.kind not in (Kind.PRODUCT_PIN, Kind.PRICE_DROP):
            continue
        await asyncio.sleep(max(0.0, due - time.time()))
        conn.request("card", kind="product", name=f"Deal at {e.t_ms // 1000} s",
                     price_cents=int(e.value) or 1990)  # fmt: skip
        sent[e.kind.label] += 1


async def _watch_server(cluster: Cluster, start: float, seconds: int,
                        out: dict[str, list[float]]) -> None:  # fmt: skip
    """CPU % and RSS MB of local nodes, once a second from ``start``."""
    procs = cluster.processes() if cluster.pids else []
    if not procs:
        return
    out["cpu_pct"], out["rss_mb"] = [], []
    await asyncio.sleep(max(0.0, start - time.time()))
    before = cpu_seconds(procs)
    for _ in range(seconds):
        await asyncio.sleep(1.0)
        now = cpu_seconds(procs)
        out["cpu_pct"].append(round(100 * (now - before), 1))
        before = now
        rss = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
        out["rss_mb"].append(round(rss / 2**20, 1))


async def run(args: argparse.Namespace, cluster: Cluster, trace: Trace,
              local: bool) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    window_s = float(args.duration)
    await asyncio.to_thread(cluster.create_room, args.room)
    host_sent: Counter[str] = Counter()
    counters = Counters()
    host, polls, gbs = await _setup_host(cluster, args.room, trace,
                                         window_s * args.speed * 1000, counters)  # fmt: skip
    host_sent.update({"poll_open": len(polls), "groupbuy_open": len(gbs)})
    cores = _cores(args, local)
    n = max(1, min(32, args.workers or len(cores)))
    start = time.time() + LEAD_S
    deadline = start + window_s + 60
    workers: list[Worker] = []
    began = time.monotonic()

    tty = sys.stderr.isatty()

    async def show_progress() -> None:
        """The live line: on a terminal redrawn every second, else a line every 2 s."""
        while True:
            await asyncio.sleep(1.0 if tty else 2.0)
            states = [w.progress[0] for w in workers if isinstance(w.progress[0], dict)]
            total = {k: sum(int(s[k]) for s in states)
                     for k in ("connected", "sent", "delivered", "errors")}  # fmt: skip
            p99 = max((s["p99"] for s in states if s["p99"] is not None), default=None)
            at = time.time() - start
            clock = f"{min(window_s, at):4.0f}/{window_s:g} s" if at >= 0 else "starting"
            line = (f"replay {clock}  clients {total['connected']}  sent {total['sent']}  "
                    f"delivered {total['delivered']}  p99 (last s) "
                    f"{'-' if p99 is None else f'{p99:.0f} ms'}  "
                    f"errors {total['errors']}")  # fmt: skip
            print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr,
                  flush=True)  # fmt: skip

    server: dict[str, list[float]] = {}
    for i in range(n):
        spec = ReplaySpec(str(args.trace), i, n, args.scale, args.speed, window_s,
                          cluster.urls, args.room, cluster.secret, start, deadline,
                          cores[i % len(cores)], polls, gbs, args.sample_every)  # fmt: skip
        workers.append(Worker(f"replay-{i}", worker_main, spec))
    log(f"replay: {trace.clients - 1} trace viewers × {args.scale}, {args.speed:g}× speed, "
        f"{window_s:g} s over {len(cluster.urls)} node(s), {n} load process(es)")  # fmt: skip
    watcher = asyncio.ensure_future(_watch_server(cluster, start, int(window_s) + 1, server))
    ticker = asyncio.ensure_future(show_progress())
    try:
        await _play_host(host, trace, start, window_s, args.speed, host_sent)
        played = await collect(workers, "played", deadline + 5)
        marker = await host.ask("comment", text="replay: end", cid=f"end-{time.time_ns()}")
        final = int(marker.get("o") or max(int(m[1]) for m in played))
        for w in workers:
            w.send(("final", final))
        results = [m[1] for m in await collect(workers, "result", deadline + 20)]
    finally:
        watcher.cancel()
        ticker.cancel()
        host.leave()
        for w in workers:
            await asyncio.to_thread(w.process.join, 15)
            if w.process.is_alive():
                w.process.terminate()
    if tty:
        print(file=sys.stderr)
    result, series = summarise(results, trace, window_s=window_s, speed=args.speed,
                               scale=args.scale, host_sent=host_sent, server=server)  # fmt: skip
    result["wall_s"] = round(time.monotonic() - began, 1)
    return result, series


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        trace = read_trace(args.trace)
    except TraceError as exc:
        log(f"replay: {exc}")
        return 2
    if (trace.clients - 1) * args.scale > MAX_CLIENTS:
        log(f"replay: {trace.clients - 1} viewers × {args.scale} is over {MAX_CLIENTS} clients")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    async def go(cluster: Cluster, local: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        async with asyncio.timeout(args.duration + 180):
            return await run(args, cluster, trace, local)

    try:
        if args.urls:
            cluster = target_cluster(args.urls, allow_remote=args.allow_remote)
            result, series = run_loop(lambda: go(cluster, False))
        else:
            # Each viewer's own rates are compressed by --speed too: budgets to match.
            speed = max(1.0, args.speed)
            budgets = ["--ws-message-rate", str(20 * speed), "--comment-rate", str(speed),
                       "--comment-burst", str(int(5 * speed))]  # fmt: skip
            with local_cluster(args.nodes, budgets, communities=trace.communities) as cluster:
                result, series = run_loop(lambda: go(cluster, True))
    except Exception as exc:  # a crash or an unreachable target: an invalid run
        log(f"replay: FAILED: {type(exc).__name__}: {exc}")
        return verdict.finish("replay", None, [verdict.crash_reason(exc)])
    missed = slo.check(result, args.slo)
    path = args.report or Path(tempfile.gettempdir()) / f"livecore-replay-{int(time.time())}.html"
    title = f"{args.trace.name} ×{args.scale} at {args.speed:g}×"
    result["report"] = str(report.write(path, result, series, missed=missed, title=title))
    lat = result["latency_ms"]
    log(f"replay: {result['clients_established']} clients ({result['clients_failed']} failed, "
        f"{result['reconnects']} reconnects), {result['sent']} sent, {result['delivered']} "
        f"delivered, {result['lost']} lost, latency p50 {lat['p50']} p95 {lat['p95']} p99 "
        f"{lat['p99']} max {lat['max']} ms, {result['errors']} errors "
        f"{result['errors_by_code'] or ''}; worst mix error "
        f"{max(result['event_mix_error_pct'].values(), default=0)}%; "
        f"report {result['report']}")  # fmt: skip
    for line in missed:
        log(f"replay: SLO missed: {line}")
    if missed:
        result["slo_missed"] = missed
    failed = result["clients_failed"]
    problems = [
        f"{failed} clients failed to connect" if failed else None,
        verdict.refused(result["errors_by_code"], "audience actions"),
    ]
    code = slo.EXIT_SLO_MISSED if missed else 0
    return verdict.finish("replay", result, problems, code_if_ok=code)
