"""``python -m loadtests media``: one WHIP publisher, N WHEP viewers, what forwarding costs.

A synthetic H.264 clip (ffmpeg's test pattern at ``--resolution``,
``--fps``, ``--bitrate``; libx264 constrained baseline, a keyframe every
``--gop-s``) is encoded once, here, and published over WHIP at real-time
pace with strictly increasing pts. N lean viewers join over WHEP (see
``loadtests.rtcviewer``: aiortc for ICE/DTLS, then a counter reading the
clear RTP header of each SRTP packet), spread over load processes of at most
``--per-process`` viewers. After a short settle, the run measures for
``--duration`` seconds; during it a few probe viewers (stock, decoding aiortc
peers) join and leave to time the first frame. Node(s) and Valkey are pinned
to CPU 0, the load processes (this driver with the publisher, the lean and
probe workers) to CPU 1; lean workers run at nice +5 so the publisher's pace
wins when the load CPU is short. Every peer connection has an explicit
configuration with no ICE servers and gathers on 127.0.0.1 only.

The last line of stdout is one JSON object:

- ``viewers``: lean viewers connected and measured (probes not included);
- ``server_cpu_pct``: CPU of the node process(es) over the window (psutil,
  100 = one core); with ``--target`` the process listening on the target's
  port, or null if it cannot be found;
- ``packets_out_per_s``: RTP packets (video + RTX) the viewers received per
  second in the window (lean viewers' counters + probes' inbound stats), i.e.
  what the server sent that arrived;
- ``server_us_per_packet``: server CPU seconds / those packets;
- ``viewers_per_core_est``: viewers one core serves at the full frame rate,
  ``10^6 / (server_us_per_packet × packets per frame × fps)`` (packets per
  frame as the lean viewers received them). Below saturation this equals
  ``viewers × 100 / server_cpu_pct``; at saturation, when frames are skipped,
  it does not count the starved viewers as served;
- ``fps {min, median}``: over lean viewers, completed frames (RTP packets up
  to a marker bit) per second of the window;
- ``ttff_ms {p50, p95}``: probes, WHEP POST sent → first decoded frame;
- ``added_latency_ms {p50, p95}``: over every frame every lean viewer
  completed in the window, publisher send time → arrival of the frame's last
  packet at the viewer (``time.monotonic()``, one clock for all processes);
- ``codec_ops_on_forward_path``: increase of ``livecore_media_codec_ops``
  on the node's ``/metrics`` over the run (null, with a note on stderr, when
  the node does not export it).

``load_cpu_pct`` is the load side's own CPU (its core = 100). The line
carries ``"ok": true`` (exit code 0) only when: every viewer connected,
every viewer received frames in the window on a live connection, every probe
decoded a frame, the latency mapping found no inconsistent frame, codec ops
stayed 0 (if exported) and the load core was not saturated; otherwise it is
``{"ok": false, "reason": ...}`` with no figures, and the exit code 1
(``loadtests.verdict``). A run stops as soon as a viewer fails to connect.

How frames are mapped back to the publisher's: ``loadtests.framemap``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from loadtests.clip import (
    CODE_SPAN,
    VIDEO_CLOCK,
    Clip,
    Publisher,
    encode_clip,
    parse_bitrate,
    parse_resolution,
    publish,
)
from loadtests.framemap import Mapped, map_frames
from loadtests.local import LOAD_CPU, Cluster, local_cluster, pin, target_cluster
from loadtests.rtcviewer import PROBE_TIMEOUT_S
from loadtests.rtcworkers import WorkerSpec, lean_worker_main, probe_worker_main
from loadtests.serverstats import codec_ops, server_processes
from loadtests.stats import HelpFormatter, cpu_seconds, log, percentile
from loadtests.verdict import Invalid, Outcome, saturated
from loadtests.verdict import run as run_verdict
from loadtests.whep import whep_delete
from loadtests.workers import Worker, collect, run_loop

ROOM = "media-load"
HOST_USER = "loadtest-host"
SETTLE_S = 2.0
PROBE_STAY_S = 1.0
LEAN_NICE = 5


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# -- the run ------------------------------------------------------------------------------


@dataclass
class Options:
    viewers: int
    bitrate: int
    width: int
    height: int
    fps: int
    duration: float
    per_process: int
    probes: int
    gop_s: float
    clip_s: float
    concurrency: int


def budget_s(opts: Options) -> float:
    """The whole run's time limit (joins get most of it)."""
    return 120 + 0.4 * opts.viewers + opts.duration


async def run(cluster: Cluster, clip: Clip, opts: Options) -> Outcome:
    started = time.monotonic()
    deadline = started + budget_s(opts)
    problems: list[str] = []
    base = cluster.urls[0]
    whep_url = f"{base}/whep/{ROOM}"
    server = server_processes(cluster)
    if not server:
        log("  note: no server process found to measure (server_cpu_pct will be null)")
    await asyncio.to_thread(cluster.create_room, ROOM)
    workers: list[Worker] = []
    probe: Worker | None = None
    publisher: Publisher | None = None
    async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
        try:
            ops_before = await codec_ops(client, base)
            publisher = await publish(
                client, base, ROOM, cluster.token("host", HOST_USER, ROOM), clip
            )
            log(f"  publishing {clip.width}x{clip.height}@{clip.fps} "
                f"({clip.bitrate / 1e6:.2f} Mbit/s, {len(clip.frames)}-frame clip)")  # fmt: skip
            # Lean viewers over load processes of at most per_process each.
            tokens = [cluster.token("viewer", f"viewer-{i}", ROOM) for i in range(opts.viewers)]
            parts = max(1, math.ceil(opts.viewers / opts.per_process))
            wall_deadline = time.time() + (deadline - time.monotonic()) + 30
            per_worker = max(2, opts.concurrency // parts)

            def progress() -> None:
                done = sum(w.progress[0] for w in workers)
                bad = sum(w.progress[1] for w in workers)
                log(f"  connecting {done}/{opts.viewers}" + (f" ({bad} failed)" if bad else ""))

            for part in range(parts):
                spec = WorkerSpec(whep_url, tokens[part::parts], wall_deadline, LOAD_CPU,
                                  concurrency=per_worker, nice=LEAN_NICE)  # fmt: skip
                workers.append(Worker(f"lean-{part}", lean_worker_main, spec, progress))
            span = max(0.5, opts.duration - PROBE_STAY_S - 0.5)
            offsets = [span * (i + 1) / (opts.probes + 1) for i in range(opts.probes)]
            probe_tokens = [cluster.token("viewer", f"probe-{i}", ROOM) for i in range(opts.probes)]
            if opts.probes:
                spec = WorkerSpec(whep_url, probe_tokens, wall_deadline, LOAD_CPU,
                                  probe_offsets=offsets, probe_stay_s=PROBE_STAY_S)  # fmt: skip
                probe = Worker("probes", probe_worker_main, spec)
            log(f"  connecting {opts.viewers} viewers over {parts} load process(es)")

            joined_msgs = await collect(workers, "joined", deadline)
            joined = sum(m[1] for m in joined_msgs)
            failed = sum(m[2] for m in joined_msgs)
            errors: Counter[str] = Counter()
            for m in joined_msgs:
                errors.update(m[3])
            why = f"; {failed} failed: {dict(errors.most_common(3))}" if failed else ""
            log(f"  connected {joined}/{opts.viewers} viewers{why}")
            if joined < opts.viewers:  # nothing this run measures would be valid
                raise Invalid(f"{opts.viewers - joined} of {opts.viewers} viewers failed to "
                              f"connect: {dict(errors.most_common(3))}")  # fmt: skip
            await asyncio.sleep(SETTLE_S)

            # The window.
            lean_procs = [p for w in workers if (p := w.psutil)]
            load_procs = [*lean_procs, psutil.Process()]
            if probe is not None and (probe_proc := probe.psutil):
                load_procs.append(probe_proc)
            t0 = time.monotonic()
            store = [psutil.Process(cluster.store_pid)] if cluster.store_pid else []
            s0, l0, k0 = cpu_seconds(server), cpu_seconds(load_procs), cpu_seconds(lean_procs)
            v0 = cpu_seconds(store)
            server_user0 = sum(p.cpu_times().user for p in server)
            cores0 = psutil.cpu_times(percpu=True)
            for w in workers:
                w.send("start")
            if probe is not None:
                probe.send(("start", t0))
            log(f"  measuring for {opts.duration:g} s")
            while (left := t0 + opts.duration - time.monotonic()) > 0:
                await asyncio.sleep(min(left, 2.0))
                if left > 2.0:
                    log(f"  measuring {time.monotonic() - t0:.0f}/{opts.duration:g} s")
            for w in workers:
                w.send("stop")
            t1 = time.monotonic()
            s1, l1, k1 = cpu_seconds(server), cpu_seconds(load_procs), cpu_seconds(lean_procs)
            v1 = cpu_seconds(store)
            server_user1 = sum(p.cpu_times().user for p in server)
            cores1 = psutil.cpu_times(percpu=True)
            window = t1 - t0
            results = [m[1] for m in await collect(workers, "result", deadline)]
            probe_results: list[dict[str, Any]] = []
            if probe is not None:
                last_probe = t0 + max(offsets, default=0.0) + PROBE_TIMEOUT_S + PROBE_STAY_S
                probe_deadline = min(deadline, max(time.monotonic(), last_probe) + 10)
                probe_results = (await probe.expect("result", probe_deadline))[1]
            ops_after = await codec_ops(client, base)
        finally:
            everyone = [*workers, *([probe] if probe else [])]
            for w in everyone:
                w.send("close")
            if publisher is not None:
                await whep_delete(client, publisher.session_url)
                await publisher.pc.close()
            for w in everyone:
                await asyncio.to_thread(w.process.join, 15)
                if w.process.is_alive():
                    w.process.terminate()

    # -- figures --
    assert publisher is not None
    viewers = [v for payload in results for v in payload["viewers"]]
    lean_packets = sum(v["packets"] for v in viewers)
    probe_packets = sum(int(p["packets"]) for p in probe_results)
    packets = lean_packets + probe_packets
    lean_frames = sum(v["frames"] for v in viewers)
    # RTP packets per second one viewer gets at the full frame rate.
    per_viewer_rate = lean_packets / lean_frames * clip.fps if lean_frames else 0.0
    fps = [v["frames"] / max(1e-9, payload["window_s"]) for payload in results
           for v in payload["viewers"]]  # fmt: skip
    mapped = Mapped()
    step = VIDEO_CLOCK // clip.fps
    for v in viewers:
        map_frames(v["frame_ts"], v["frame_at"], publisher.track.sent_at, step, mapped)
    server_cpu = s1 - s0 if server else None
    cpu_pct = 100 * server_cpu / window if server_cpu is not None else None
    ttffs = [float(p["ttff_ms"]) for p in probe_results if p["ttff_ms"] is not None]
    codec = None if ops_before is None or ops_after is None else ops_after - ops_before
    result = {
        "viewers": len(viewers),
        "server_cpu_pct": _round(cpu_pct),
        "packets_out_per_s": round(packets / window),
        "server_us_per_packet": _round(1e6 * server_cpu / packets, 2)
        if server_cpu is not None and packets else None,
        "viewers_per_core_est": round(packets / (server_cpu * per_viewer_rate))
        if server_cpu and packets and per_viewer_rate
        else None,
        "fps": {"min": _round(min(fps, default=None)),
                "median": _round(statistics.median(fps) if fps else None)},
        "ttff_ms": {"p50": _round(percentile(ttffs, 0.5)), "p95": _round(percentile(ttffs, 0.95))},
        "added_latency_ms": {"p50": _round(percentile(mapped.latencies_ms, 0.5)),
                             "p95": _round(percentile(mapped.latencies_ms, 0.95))},
        "codec_ops_on_forward_path": codec,
    }  # fmt: skip

    # -- checks and the load side's own figures (stderr) --
    if codec is None:
        log("  note: the node exports no livecore_media_codec_ops; codec ops reported null")
    elif codec != 0:
        problems.append(f"{codec} decode/encode operations on the forwarding path")
    silent = sum(1 for v in viewers if v["frames"] == 0 or not v["open"])
    if silent:
        problems.append(
            f"{silent} viewers received no frame in the window or lost their connection"
        )
    for i, outcome in enumerate(probe_results):
        if outcome["ttff_ms"] is None:
            problems.append(f"probe {i} decoded no frame: {outcome['error']}")
    if mapped.mismatches or mapped.unmapped_viewers:
        problems.append(f"latency mapping: {mapped.mismatches} frames inconsistent, "
                        f"{mapped.unmapped_viewers} viewers without a code pair")  # fmt: skip
    lost = sum(v["lost"] for v in viewers)
    load_pct = 100 * (l1 - l0) / window
    lean_pct = 100 * (k1 - k0) / window
    result["load_cpu_pct"] = _round(load_pct)
    if too_busy := saturated(load_pct, "fps and latency"):
        problems.append(too_busy)
    log(f"  load side (CPU {LOAD_CPU}): {load_pct:.0f}% of a core in the window; lean workers "
        f"{lean_pct:.0f}% → {lean_pct / max(1, len(viewers)):.3f}% of a core per lean viewer, "
        f"{1e6 * (k1 - k0) / max(1, lean_packets):.2f} µs per received packet; "
        f"{lost} packets lost ({100 * lost / max(1, lean_packets + lost):.3f}%), "
        f"{publisher.track.keyframe_requests} keyframe requests to the publisher")  # fmt: skip
    # Where each CPU went: ours (node + Valkey on CPU 0, load processes on CPU 1) and
    # other processes. Softirq is shown apart although the kernel charges most of
    # it to the process it interrupted: on CPU 0 that is mostly the loopback
    # delivery of the node's packets into the viewers' sockets (receive-side work
    # that a real network would do elsewhere), inside server_cpu_pct.
    ours = {0: 100 * ((s1 - s0) + (v1 - v0)) / window, LOAD_CPU: load_pct}
    for cpu, (a, b) in enumerate(zip(cores0, cores1, strict=True)):
        if cpu not in ours:
            continue
        idle = (b.idle - a.idle) + (getattr(b, "iowait", 0) - getattr(a, "iowait", 0))
        busy = 100 * (sum(b) - sum(a) - idle) / window
        softirq = 100 * (getattr(b, "softirq", 0) - getattr(a, "softirq", 0)) / window
        others = max(0.0, busy - ours[cpu])
        log(f"  CPU {cpu} in the window: busy {busy:.0f}%: ours {ours[cpu]:.0f}%, other "
            f"processes {others:.0f}%; softirq {softirq:.0f}% (mostly inside ours)")  # fmt: skip
        if others > max(10.0, softirq + 5):
            log(f"  warning: other processes used {others:.0f}% of CPU {cpu}: figures disturbed")
    if server:
        user = server_user1 - server_user0
        log(
            f"  node: {100 * user / window:.0f}% user, "
            f"{100 * ((s1 - s0) - user) / window:.0f}% system (syscalls + softirq charged to it)"
        )
    if cpu_pct:
        log(f"  {per_viewer_rate:.0f} packets/s per viewer at {clip.fps} fps; "
            f"viewers × 100 / server CPU = {len(viewers) * 100 / cpu_pct:.0f}")  # fmt: skip
    medians = mapped.viewer_medians_ms
    seconds = mapped.by_second(t0, int(window))
    log(f"  added latency: per-viewer medians {_round(min(medians, default=None))}.."
        f"{_round(max(medians, default=None))} ms; p50 per second of the window "
        f"{[_round(x, 0) for x in seconds]}")  # fmt: skip
    probes = [
        "/".join(str(round(p[k])) if p[k] is not None else "-"
                 for k in ("answer_ms", "connected_ms", "ttff_ms")) + f" ms, {p['frames']} frames"
        for p in probe_results
    ]  # fmt: skip
    log(f"  probes (answer/connected/first frame after POST, frames decoded): {probes}; "
        f"run took {time.monotonic() - started:.0f} s")  # fmt: skip
    return result, problems


def _local(execute: Callable[[Cluster], Outcome], extra: list[str]) -> Outcome:
    """One run against a fresh local node started with ``extra`` flags."""
    with local_cluster(1, extra) as cluster:
        return execute(cluster)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests media", description=__doc__,
        formatter_class=HelpFormatter,
    )  # fmt: skip
    parser.add_argument("--viewers", type=int, default=100, help="lean WHEP viewers")
    parser.add_argument("--bitrate", type=parse_bitrate, default="1.5M", help="video bitrate")
    parser.add_argument(
        "--resolution", type=parse_resolution, default="1280x720", help="video size"
    )
    parser.add_argument("--fps", type=int, default=30, help="frames per second")
    parser.add_argument("--duration", type=float, default=10, help="seconds measured")
    parser.add_argument("--target", metavar="URL", help="a running node on loopback")
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument("--per-process", type=int, default=100, help="lean viewers per process")
    parser.add_argument("--probes", type=int, default=3, help="decoding viewers timing TTFF")
    parser.add_argument("--gop-s", type=float, default=2.0, help="seconds between keyframes")
    parser.add_argument("--clip-s", type=float, default=6.0, help="length of the looped clip")
    parser.add_argument("--concurrency", type=int, default=16, help="WHEP joins in flight")
    parser.add_argument(
        "--forwarder",
        choices=("lean", "aiortc"),
        default=None,
        help="the node's --forwarder (default: the node's default, lean)",
    )
    parser.add_argument("--compare", action="store_true",
                        help="run --forwarder lean, then aiortc, on the same clip and viewers; "
                        "print both and their ratio (loadtests.mediacompare)")  # fmt: skip
    args = parser.parse_args(argv)
    if not 1 <= args.viewers <= 5000 or not 0 < args.duration <= 600:
        parser.error("--viewers must be 1..5000 and --duration 0..600 s")
    if args.fps < 1 or VIDEO_CLOCK % args.fps or VIDEO_CLOCK // args.fps < 4 * CODE_SPAN:
        parser.error("--fps must divide 90000 and be at most 90")
    if not 1 <= args.per_process <= 2000 or not 0 <= args.probes <= 20:
        parser.error("--per-process must be 1..2000 and --probes 0..20")
    width, height = args.resolution
    opts = Options(args.viewers, args.bitrate, width, height, args.fps, args.duration,
                   args.per_process, args.probes, args.gop_s, args.clip_s,
                   max(1, args.concurrency))  # fmt: skip
    pin(os.getpid(), LOAD_CPU)
    started = time.monotonic()
    log(f"media: encoding {opts.clip_s:g} s of {opts.width}x{opts.height}@{opts.fps} "
        f"at {opts.bitrate / 1e6:g} Mbit/s")  # fmt: skip
    clip = encode_clip(opts.width, opts.height, opts.fps, opts.bitrate, opts.clip_s, opts.gop_s)

    async def go(cluster: Cluster) -> Outcome:
        async with asyncio.timeout(budget_s(opts) + 60):
            return await run(cluster, clip, opts)

    def execute(cluster: Cluster) -> Outcome:
        outcome: Outcome = run_loop(lambda: go(cluster))
        summary(outcome[0], opts, started)
        return outcome

    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C: the node and Valkey are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sessions = opts.viewers + opts.probes + 1
    # The node admits 500 media sessions by default; a bigger run raises the
    # cap so that it measures forwarding, not admission control.
    extra = ["--media-max-sessions", str(sessions + 16)] if sessions > 500 else []
    if args.compare:
        if args.target:
            parser.error("--compare starts its own nodes; it cannot use --target")
        from loadtests.mediacompare import compare

        return compare(lambda forwarder: _local(execute, [*extra, "--forwarder", forwarder]))
    if args.forwarder:
        extra += ["--forwarder", args.forwarder]

    def body() -> Outcome:
        if args.target:
            result, problems = execute(target_cluster([args.target]))
        else:
            result, problems = _local(execute, extra)
        return result, problems

    return run_verdict("media", body)


def summary(result: dict[str, Any], opts: Options, started: float) -> None:
    """The run's figures in one line on stderr, for the person at the terminal."""
    lat, ttff, fps = result["added_latency_ms"], result["ttff_ms"], result["fps"]
    log(
        f"media: {result['viewers']} viewers of {opts.width}x{opts.height}@{opts.fps} "
        f"{opts.bitrate / 1e6:g} Mbit/s → server CPU {result['server_cpu_pct']}%, "
        f"{result['packets_out_per_s']} packets/s out, {result['server_us_per_packet']} µs/packet, "
        f"~{result['viewers_per_core_est']} viewers/core; "
        f"fps min {fps['min']} median {fps['median']}; "
        f"TTFF p50 {ttff['p50']} ms p95 {ttff['p95']} ms; added latency p50 {lat['p50']} ms "
        f"p95 {lat['p95']} ms; codec ops {result['codec_ops_on_forward_path']} "
        f"({time.monotonic() - started:.0f} s)"
    )
