"""``python -m loadtests highlights``: are the right moments clipped, how fast, at what cost.

With no options it plays the shipped labelled sample (a 4-minute synthetic
live-commerce session, seed 101, with its true highlight moments) against a
node it starts itself, with a generated 720p30 H.264 test video:

1. a local Valkey and ``--nodes`` nodes (recording on, 1-s segments), on
   127.0.0.1 only;
2. the host publishes the video over WHIP to the first node (aiortc, explicit
   configuration, loopback ICE) at real-time pace; its console (the room
   channel) is on the last node, where it opens the trace's polls and group
   buys;
3. the trace's audience is replayed over websockets (``loadtests.replayworker``),
   viewer ``v`` on node ``v mod N``: arrivals, comments, likes, votes, group
   joins, officer sign-ups, reconnects at their moments; the host pins a
   product card at each of the trace's pins (so with several nodes, the
   recording node sees both through Valkey);
4. the host's socket collects every ``clip_ready``; after the trace the
   stream ends, the last highlights are cut, and the node's ``/metrics`` are read.

Time: the trace is played ``--speed`` times faster (default 6: 4 minutes in
40 s) and the node runs with ``--highlight-time-scale`` set to the same factor,
so the detector reads the audience on the trace's own timeline (its
parameters keep meaning trace seconds) and cuts each window ÷ speed from the
media. Each viewer's own rate is compressed too, so the node's per-viewer
comment and message limits are raised by the same factor. ``--speed 1`` plays in real time.

The last stdout line is JSON:

- ``labelled, detected, precision, recall``: the clips' windows (from each
  ``clip_ready``'s ``reason.window``, mapped back to trace seconds) against
  the trace's labels; a detection counts when it overlaps a labelled moment,
  a label is found when a detection overlaps it; ``by_kind`` and ``bursts``
  (audience-only detections scored alone) say where they came from, and
  ``offline`` is the pure detector on the same trace without the network;
- ``clip_ready_delay_s {p50, p95}``: end of the highlight window → its
  ``clip_ready`` on the host's socket (wall seconds; the window's end is taken
  from the publisher's first frame, so the figure errs high by the one-way
  loopback delay);
- ``windows``: each clip's ``[start, end, kind]`` in trace seconds (against
  ``labels``, the trace's labelled moments, also in the result);
- ``clip_cut_speed_x``: media seconds cut / wall seconds the node's media
  worker spent remuxing (``livecore_clip_*_seconds_total``);
- ``encode_ops``: increase of ``livecore_media_codec_ops`` (video decodes and
  encodes on the node's media paths; recording and cutting are stream copy);
- ``recording_cpu_pct``: the recorder's worker-thread CPU per media second
  (``livecore_recorder_cpu_seconds_total`` / ``livecore_recorded_media_seconds_total``),
  % of one core for this one stream;
- ``others_cpu_pct``: the CPU other processes of a shared machine took while the
  audience played (percent of one core; over 10 the figures are disturbed);
- ``targets``: each figure against its target (precision and recall ≥ 0.8,
  delay p95 ≤ 5 s, cutting ≥ 100×, encode_ops 0, recorder ≤ 5 %).

``--shapes SEED`` plays a ``loadtests.highlightshapes`` session instead of
``--trace`` (a 60-viewer room, moments of seven shapes, three decoys; seeds
from 100 are held out: the detector was tuned on seeds 1-15 of its tuning
shapes and on ``synth`` seeds 1-5).

``--offline`` skips the node: it generates sessions with ``--seeds`` (and
``--generator synth|shapes``) and scores the pure detector on them (pooled),
in seconds. The last stdout line has
``"ok": true`` with the figures (exit code 0), or is ``{"ok": false,
"reason": ...}`` with no figures (exit code 1; see ``loadtests.verdict``) when
the run crashed, no clip was produced, a clip failed, a replayed client failed
to connect or the set-up refused the audience (rate limits, unknown
communities). Missed ``targets`` are figures, not an invalid run. Bad
options: exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgpack
import psutil

from livecore.audience.trace import HOST, Kind, Trace, TraceError, read_trace, write_trace
from loadtests import highlightshapes as shapes
from loadtests.clip import Clip, encode_clip, parse_bitrate, parse_resolution, publish
from loadtests.highlightscore import Window, offline, pooled, product_name, score_by_kind
from loadtests.local import LOAD_CPU, Cluster, local_cluster, pin
from loadtests.replayclient import Counters, HostConnection, hello
from loadtests.replayworker import ReplaySpec, worker_main
from loadtests.stats import (
    HelpFormatter,
    MachineCpu,
    cpu_seconds,
    log,
    percentile,
    report_others,
)
from loadtests.synth import SynthConfig, generate
from loadtests.verdict import Outcome, refused
from loadtests.verdict import run as run_verdict
from loadtests.whep import whep_delete
from loadtests.workers import Worker, collect, run_loop
from loadtests.wsclient import host_port

SAMPLE_TRACE = Path(__file__).resolve().parent / "data" / "highlights.lctrace"
ROOM = "highlights-bench"
HOST_USER = "bench-host"
LEAD_S = 2.0
END_WAIT_S = 20.0
"""After the stream ends: at most this long for the last clips and the replay."""
TARGETS = {"precision": 0.8, "recall": 0.8, "clip_ready_delay_p95_s": 5.0,
           "clip_cut_speed_x": 100.0, "encode_ops": 0, "recording_cpu_pct": 5.0}  # fmt: skip


class ClipWatch(HostConnection):
    """The host's socket, also keeping every ``clip_ready`` with its arrival (wall) time."""

    __slots__ = ("clips",)

    def __init__(self, hello: bytes, stats: Counters, *, sampled: bool = False) -> None:
        super().__init__(hello, stats, sampled=sampled)
        self.clips: list[tuple[float, dict[str, Any]]] = []

    def _count(self, first: int, last: int, payload: bytes) -> None:
        super()._count(first, last, payload)
        if b"clip_ready" in payload:
            for event in msgpack.unpackb(payload, raw=False).get("ev") or []:
                if event.get("t") == "clip_ready" and len(self.clips) < 1000:
                    self.clips.append((time.time(), event["clip"]))


async def connect_watch(url: str, room: str, token: str, counters: Counters) -> ClipWatch:
    host, port = host_port(url)
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: ClipWatch(hello(token), counters), host, port)
    conn.transport.write(conn.upgrade_request(f"{host}:{port}", f"/ws/{room}"))  # type: ignore[union-attr]
    await asyncio.wait_for(conn.joined, 30)
    return conn


async def open_host_actions(conn: ClipWatch, trace: Trace) -> tuple[list[str], list[str]]:
    """Open the trace's polls and group buys (in order) before it plays."""
    polls: list[str] = []
    gbs: list[str] = []
    for e in trace.events:
        if e.kind == Kind.POLL_OPEN:
            ack = await conn.ask("poll_open", question=f"下一个团购？#{len(polls) + 1}",
                                 options=["A", "B", "C"], duration_s=7200)  # fmt: skip
            polls.append(str(ack.get("poll", "")))
        elif e.kind == Kind.GROUPBUY_OPEN:
            ack = await conn.ask("groupbuy_open", product=product_name(len(gbs) + 1),
                                 price_cents=int(e.value) or 1990, target=10_000,
                                 duration_s=7200)  # fmt: skip
            gbs.append(str(ack.get("gb", "")))
    return polls, gbs


async def play_pins(conn: ClipWatch, trace: Trace, start: float, speed: float) -> int:
    """Pin a product card at each of the trace's pins (wall ``start + t / speed``)."""
    pins = 0
    for e in trace.events:
        if e.client != HOST or e.kind != Kind.PRODUCT_PIN:
            continue
        await asyncio.sleep(max(0.0, start + e.t_ms / 1000 / speed - time.time()))
        pins += 1
        conn.request("card", kind="product", name=product_name(pins),
                     price_cents=int(e.value) or 1990)  # fmt: skip
    return pins


def metric(text: str, name: str, label: str = "") -> float:
    """Sum of the samples of ``name`` on a /metrics page (those containing ``label``)."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)", re.M)
    return sum(float(v) for labels, v in pattern.findall(text) if label in labels)


async def read_metrics(client: httpx.AsyncClient, base: str) -> str:
    return (await client.get(f"{base}/metrics", timeout=10)).text


async def run(cluster: Cluster, trace_path: Path, trace: Trace, clip: Clip,
              speed: float) -> dict[str, Any]:  # fmt: skip
    base = cluster.urls[0]
    await asyncio.to_thread(cluster.create_room, ROOM)
    token = cluster.token("host", HOST_USER, ROOM)
    # The host's console on the last node, its camera (and so the recording) on the
    # first: with several nodes, pins reach the recording node through Valkey.
    conn = await connect_watch(cluster.urls[-1], ROOM, token, Counters())
    polls, gbs = await open_host_actions(conn, trace)
    window_s = trace.duration_s / speed
    async with httpx.AsyncClient() as client:
        ops_before = metric(await read_metrics(client, base), "livecore_media_codec_ops")
        began = time.monotonic()
        pub = await publish(client, base, ROOM, token, clip)
        t0 = pub.track.sent_at[0] + (time.time() - time.monotonic())
        start = time.time() + LEAD_S
        deadline = start + window_s + 30
        spec = ReplaySpec(str(trace_path), 0, 1, 1, speed, window_s, cluster.urls, ROOM,
                          cluster.secret, start, deadline, LOAD_CPU, polls, gbs,
                          sample_every=100_000)  # fmt: skip
        worker = Worker("highlights-replay", worker_main, spec)
        ours = [psutil.Process(), *psutil.Process().children(recursive=True)]
        cpu0, machine, played0 = cpu_seconds(ours), MachineCpu(), time.monotonic()
        log(f"highlights: {trace.clients - 1} viewers, {len(trace.labels)} labelled moments, "
            f"{trace.duration_s:.0f} s of trace in {window_s:.0f} s ({speed:g}×)")  # fmt: skip
        try:
            pins = await play_pins(conn, trace, start, speed)
            await collect([worker], "played", deadline)
            worker.send(("final", 0))
            replayed = (await collect([worker], "result", deadline + 10))[0][1]
            ours_pct = 100 * (cpu_seconds(ours) - cpu0) / (time.monotonic() - played0)
            others = machine.others_pct(ours_pct)
            report_others(others)
        finally:
            await asyncio.to_thread(worker.process.join, 10)
            if worker.process.is_alive():
                worker.process.terminate()
        await whep_delete(client, pub.session_url)
        await pub.pc.close()
        text = ""
        until = time.monotonic() + END_WAIT_S
        while time.monotonic() < until:  # the replay is built after the last clips
            text = await read_metrics(client, base)
            if metric(text, "livecore_replays_total") >= 1:
                break
            await asyncio.sleep(0.2)
    conn.leave()
    offset = (start - t0) * speed
    windows, delays = [], []
    for received, c in conn.clips:
        a, b = c["reason"]["window"]
        windows.append(Window(a * speed - offset, b * speed - offset, str(c["kind"])))
        delays.append(received - (t0 + b))
    cut_s = metric(text, "livecore_clip_cut_seconds_total")
    cut_media_s = metric(text, "livecore_clip_media_seconds_total")
    media_s = metric(text, "livecore_recorded_media_seconds_total")
    recorder_s = metric(text, "livecore_recorder_cpu_seconds_total")
    failed = metric(text, "livecore_clips_total", 'result="failed"') + metric(
        text, "livecore_clips_total", 'result="not_recorded"'
    )
    alone = score_by_kind(offline(trace), trace.labels)
    result: dict[str, Any] = {
        **score_by_kind(windows, trace.labels),
        "clip_ready_delay_s": {
            "p50": _r(percentile(delays, 0.5), 2),
            "p95": _r(percentile(delays, 0.95), 2),
            "max": _r(max(delays, default=None), 2),
        },
        "clip_cut_speed_x": _r(cut_media_s / cut_s) if cut_s else None,
        "encode_ops": round(metric(text, "livecore_media_codec_ops") - ops_before),
        "recording_cpu_pct": _r(100 * recorder_s / media_s, 2) if media_s else None,
        "clips": len(conn.clips),
        "windows": [[round(w.start_s, 1), round(w.end_s, 1), w.kind] for w in windows],
        "clips_failed": round(failed),
        "offline": {k: alone[k] for k in ("detected", "precision", "recall")},
        "speed": speed,
        "others_cpu_pct": round(others, 1),
        "nodes": len(cluster.urls),
        "trace": str(trace.meta.get("generator", trace.source)),
        "video": f"{clip.width}x{clip.height}@{clip.fps} {clip.bitrate / 1e6:.2f} Mbit/s",
        "recorded_media_s": _r(media_s),
        "pins": pins,
        "labels": [[x.start_s, x.end_s, x.reason] for x in trace.labels],
        "replay": {
            "sent": sum(replayed["sent"].values()),
            "clients_failed": replayed["failed"],
            "errors": replayed["errors"],
            "skipped": sum(replayed["skipped"].values()),
        },
        "wall_s": _r(time.monotonic() - began),
    }
    result["targets"] = targets(result)
    return result


def targets(r: dict[str, Any]) -> dict[str, bool]:
    def at_least(v: float | None, limit: float) -> bool:
        return v is not None and v >= limit

    p95 = r["clip_ready_delay_s"]["p95"]
    cpu = r["recording_cpu_pct"]
    return {
        "precision": at_least(r["precision"], TARGETS["precision"]),
        "recall": at_least(r["recall"], TARGETS["recall"]),
        "clip_ready_delay": p95 is not None and p95 <= TARGETS["clip_ready_delay_p95_s"],
        "clip_cut_speed": at_least(r["clip_cut_speed_x"], TARGETS["clip_cut_speed_x"]),
        "encode_ops": r["encode_ops"] == 0,
        "recording_cpu": cpu is not None and cpu <= TARGETS["recording_cpu_pct"],
    }


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def write_communities(path: Path, trace: Trace) -> Path:
    """The trace's compounds as a ``--communities`` file (so group joins are accepted)."""
    rows = [{"id": name, "name": f"小区 {i + 1}", "lat": 30.25 + 0.01 * (i // 10),
             "lng": 120.10 + 0.01 * (i % 10), "radius_m": 300}
            for i, name in enumerate(trace.communities)]  # fmt: skip
    path.write_text(json.dumps({"communities": rows}, ensure_ascii=False), encoding="utf-8")
    return path


def parse_seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seeds {text!r} (e.g. 100-119)") from None
    if not 0 <= first <= last or last - first >= 1000:
        raise argparse.ArgumentTypeError("seeds: FIRST-LAST, at most 1000 of them")
    return list(range(first, last + 1))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests highlights", description=__doc__,
                                     formatter_class=HelpFormatter)  # fmt: skip
    add = parser.add_argument
    add("--trace", type=Path, default=SAMPLE_TRACE, help="labelled trace (.lctrace)")
    add("--shapes", type=int, metavar="SEED", help="instead of --trace: a small room with "
        "moments of many shapes and decoys (loadtests.highlightshapes, held-out shapes; "
        "seeds from 100 are held out)")  # fmt: skip
    add("--nodes", type=int, default=1, help="nodes sharing one Valkey; the audience is spread "
        "evenly over them, the host's console is on the last, its camera on the first")  # fmt: skip
    add("--video", help="video file to publish (re-encoded once here to H.264 baseline; "
        "default: ffmpeg's test pattern)")  # fmt: skip
    add("--speed", type=float, default=6.0, help="play the trace this many times faster")
    add("--resolution", type=parse_resolution, default=(1280, 720), help="video size")
    add("--bitrate", type=parse_bitrate, default=1_500_000, help="video bitrate, e.g. 1.5M")
    add("--json", action="store_true", help="print the JSON result (always the last line)")
    add("--offline", action="store_true", help="no node: score the detector on generated "
        "sessions (--seeds, --minutes)")  # fmt: skip
    add(
        "--seeds",
        type=parse_seeds,
        default=parse_seeds("100-119"),
        help="offline: FIRST-LAST "
        "(held out: 100 and up; the detector was tuned on synth 1-5 and shapes 1-15)",
    )
    add("--generator", choices=("synth", "shapes"), default="synth",
        help="offline: the sessions' generator (shapes: the held-out shapes)")  # fmt: skip
    add("--minutes", type=float, default=10.0, help="offline: session length")
    args = parser.parse_args(argv)
    if not 1 <= args.speed <= 20:
        parser.error("--speed must be 1..20")
    if not 1 <= args.minutes <= 120:
        parser.error("--minutes must be 1..120")
    if not 1 <= args.nodes <= 5:
        parser.error("--nodes must be 1..5")
    if args.video and not Path(args.video).is_file():
        parser.error(f"--video: no such file {args.video}")
    return args


def run_offline(args: argparse.Namespace) -> dict[str, Any]:
    if args.generator == "shapes":
        traces = (shapes.generate(shapes.ShapesConfig(seed=s)) for s in args.seeds)
    else:
        traces = (generate(SynthConfig(duration_s=60 * args.minutes, seed=s)) for s in args.seeds)
    rows = [score_by_kind(offline(t), t.labels) for t in traces]
    return {"generator": args.generator, "seeds": f"{args.seeds[0]}-{args.seeds[-1]}",
            "minutes": args.minutes if args.generator == "synth" else None,
            **pooled(rows)}  # fmt: skip


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.offline:
        result = run_offline(args)
        log(f"highlights offline: {result}")
        return run_verdict("highlights", lambda: (result, []))
    tmp = tempfile.TemporaryDirectory(prefix="livecore-highlights-")
    if args.shapes is not None:
        args.trace = Path(tmp.name) / f"shapes-{args.shapes}.lctrace"
        write_trace(args.trace, shapes.generate(shapes.ShapesConfig(seed=args.shapes)))
    try:
        trace = read_trace(args.trace)
    except TraceError as exc:
        log(f"highlights: {exc}")
        tmp.cleanup()
        return 2
    if trace.duration_s / args.speed > 600 or trace.clients > 20_000:
        log("highlights: the trace is too long for one run (at most 10 minutes of wall time, "
            "20,000 viewers)")  # fmt: skip
        tmp.cleanup()
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pin(os.getpid(), LOAD_CPU)
    width, height = args.resolution
    log(f"highlights: encoding the {width}x{height} video once ...")
    clip = encode_clip(width, height, 30, args.bitrate, 4.0, 1.0, source_file=args.video)
    communities = write_communities(Path(tmp.name) / "communities.json", trace)
    node_args = ["--record-segment", "1", "--highlight-time-scale", f"{args.speed:g}",
                 "--comment-rate", f"{args.speed:g}",
                 "--ws-message-rate", f"{20 * args.speed:g}",
                 "--communities", str(communities)]  # fmt: skip

    async def go(cluster: Cluster) -> dict[str, Any]:
        async with asyncio.timeout(trace.duration_s / args.speed + 60):
            return await run(cluster, args.trace, trace, clip, args.speed)

    def body() -> Outcome:
        try:
            with local_cluster(args.nodes, node_args) as cluster:
                result: dict[str, Any] = run_loop(lambda: go(cluster))
        finally:
            tmp.cleanup()
        summary(result)
        replay = result["replay"]
        problems = [
            None if result["clips"] else "no clip was produced",
            f"{result['clips_failed']} clips failed" if result["clips_failed"] else None,
            f"{replay['clients_failed']} replayed clients failed to connect"
            if replay["clients_failed"]
            else None,
            refused(replay["errors"], "audience actions"),
        ]
        return result, [p for p in problems if p]

    return run_verdict("highlights", body)


def summary(result: dict[str, Any]) -> None:
    """The run's figures in one line on stderr."""
    d = result["clip_ready_delay_s"]
    log(
        f"highlights: {result['detected']} clips for {result['labelled']} labelled moments: "
        f"precision {result['precision']} recall {result['recall']} (bursts alone "
        f"{result['bursts']['precision']}/{result['bursts']['recall']}); clip_ready "
        f"p50 {d['p50']} p95 {d['p95']} s after the window; cut {result['clip_cut_speed_x']}×; "
        f"encode_ops {result['encode_ops']}; recorder {result['recording_cpu_pct']}% of a core; "
        f"targets missed: {[k for k, ok in result['targets'].items() if not ok] or 'none'}"
    )
