"""Many WHEP viewers from one address: a compound's phones behind one carrier-grade NAT.

Each process (``python -m loadtests.netlab.crowd``, run in one phone's
namespace, so every viewer leaves through the same router address) opens its
share of lean viewers (``loadtests.leanrtp``: aiortc does ICE and DTLS, then a
counter reads the clear RTP header of each SRTP packet): viewer ``i`` of
``total`` POSTs its offer at ``start + within·i/total``, so the whole crowd
asks within ``--within`` seconds. Its first answer's status and latency are
kept (no retry: a 503 or 429 counts as refused). Once every viewer of the
share has its first frame (or failed, or ``--join-by`` passed) the process
prints ``{"joined": N}`` and waits for the driver's go: the file ``--go``
holding the wall-clock time to start measuring, the same for every process,
once all have joined. Then every viewer's completed frames are counted for
``--window`` seconds, all leave (DELETE) and the process prints its
:class:`CrowdShare` as its last line.

:func:`run_crowd` starts the processes in a lab phone, gives the go and adds
their shares up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
from aiortc import RTCSessionDescription

from livecore import tokens
from loadtests.leanrtp import RtpCounter, install_lean_receive, video_payload_type
from loadtests.local import LOAD_CPU, SERVER_CPU, pin
from loadtests.netlab.lab import Host, Lab
from loadtests.stats import cpu_seconds
from media.peers import MediaPeerConnection, PeerConfig, create_peer_connection

PREPARE_S = 0.5
"""A viewer makes its offer (gathers its one host candidate) this long before its POST."""
GO_WAIT_S = 60.0
PHONE_CHECK_S = 2.5
"""A viewer checks its path as often as Chrome does once connected (libwebrtc's
stable-connection ping interval, 2.5 s), not every second as the node does."""
"""How long after ``--join-by`` a process waits for the go before it gives up."""


async def _go(path: Path, until: float) -> float:
    """The wall-clock time written in ``path`` once it appears (the driver's go)."""
    while not await asyncio.to_thread(path.exists):
        if time.time() > until:
            raise TimeoutError("no go from the driver")
        await asyncio.sleep(0.1)
    return float(await asyncio.to_thread(path.read_text))


@dataclass
class CrowdShare:
    """What one crowd process saw (or, added up, the whole crowd)."""

    posted: int = 0
    status: dict[str, int] = field(default_factory=dict)
    #: Seconds from the crowd's start to the last 201 answer.
    answered_within_s: float = 0.0
    #: Milliseconds from each POST to its answer.
    answer_ms: list[float] = field(default_factory=list)
    connected: int = 0
    first_frame: int = 0
    #: Completed frames per second of each viewer over the window (0 for one that failed).
    fps: list[float] = field(default_factory=list)
    lost_packets: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, other: CrowdShare) -> None:
        self.posted += other.posted
        self.status = dict(Counter(self.status) + Counter(other.status))
        self.answered_within_s = max(self.answered_within_s, other.answered_within_s)
        self.answer_ms += other.answer_ms
        self.connected += other.connected
        self.first_frame += other.first_frame
        self.fps += other.fps
        self.lost_packets += other.lost_packets
        self.errors = dict(Counter(self.errors) + Counter(other.errors))


@dataclass
class _Viewer:
    pc: MediaPeerConnection
    counter: RtpCounter | None = None
    session_url: str | None = None


async def _join(
    client: httpx.AsyncClient, args: argparse.Namespace, index: int, share: CrowdShare,
    viewers: list[_Viewer],
) -> None:  # fmt: skip
    post_at = args.start_at + args.within * index / args.total
    await asyncio.sleep(max(0.0, post_at - PREPARE_S - time.time()))
    viewer = _Viewer(create_peer_connection(PeerConfig(
        host_addresses=(args.address,), consent_interval_s=PHONE_CHECK_S,
        consent_expiry_s=3 * PHONE_CHECK_S,
    )))  # fmt: skip
    viewers.append(viewer)
    pc = viewer.pc
    try:
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        viewer.counter = install_lean_receive(pc)
        user = f"crowd{index}"
        token = tokens.mint(args.secret, role=tokens.Role.VIEWER, room=args.room, user=user,
                            ttl_s=3600)  # fmt: skip
        await asyncio.sleep(max(0.0, post_at - time.time()))
        share.posted += 1
        posted = time.monotonic()
        answer = await client.post(
            args.url, content=str(pc.localDescription.sdp).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"},
        )  # fmt: skip
        share.answer_ms.append(round(1000 * (time.monotonic() - posted), 1))
        share.status[str(answer.status_code)] = share.status.get(str(answer.status_code), 0) + 1
        if answer.status_code != 201:
            raise ConnectionRefusedError(f"{answer.status_code} {answer.text[:80]}")
        share.answered_within_s = max(share.answered_within_s, time.time() - args.start_at)
        viewer.session_url = str(answer.url.join(answer.headers["location"]))
        viewer.counter.video_pt = video_payload_type(answer.text)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
        while viewer.counter.first_frame_at is None:
            if pc.connectionState in ("failed", "closed"):
                raise ConnectionError(f"connection {pc.connectionState}")
            if time.time() > args.join_by:
                raise TimeoutError("no frame before --join-by")
            await asyncio.sleep(0.1)
        share.first_frame += 1
    except Exception as exc:  # counted and reported
        key = f"{type(exc).__name__}: {str(exc)[:100]}"
        share.errors[key] = share.errors.get(key, 0) + 1


async def crowd(args: argparse.Namespace) -> CrowdShare:
    share = CrowdShare()
    viewers: list[_Viewer] = []
    limits = httpx.Limits(max_connections=256)  # phones each have their own; bounded here
    async with httpx.AsyncClient(timeout=15.0, limits=limits, trust_env=False) as client:
        try:
            indices = range(args.first, args.first + args.count)
            joins = [asyncio.ensure_future(_join(client, args, i, share, viewers))
                     for i in indices]  # fmt: skip
            _, late = await asyncio.wait(joins, timeout=max(0.0, args.join_by - time.time()) + 5)
            for join in late:  # still waiting for an answer or a frame
                join.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            if late:
                share.errors["not joined by --join-by"] = len(late)
            print(json.dumps({"joined": share.first_frame}), flush=True)
            measure_at = await _go(Path(args.go), args.join_by + GO_WAIT_S)
            await asyncio.sleep(max(0.0, measure_at - time.time()))
            counters = [v.counter for v in viewers]
            before = [(c.frames, c.lost) if c else (0, 0) for c in counters]
            await asyncio.sleep(args.window)
            for viewer, counter, (frames, lost) in zip(viewers, counters, before, strict=True):
                if counter is None or viewer.pc.connectionState != "connected":
                    share.fps.append(0.0)
                    continue
                share.connected += 1
                share.fps.append(round((counter.frames - frames) / args.window, 2))
                share.lost_packets += counter.lost - lost
            share.fps += [0.0] * (args.count - len(viewers))
        finally:
            gate = asyncio.Semaphore(32)

            async def leave(viewer: _Viewer) -> None:
                async with gate:
                    if viewer.session_url:
                        with contextlib.suppress(httpx.HTTPError):
                            await client.delete(viewer.session_url, timeout=5)
                    await viewer.pc.close()

            await asyncio.gather(*(leave(v) for v in viewers), return_exceptions=True)
    return share


@dataclass
class CrowdCpu:
    """CPU (100 = one core) of the node and of the crowd's processes, while the crowd
    joined (from its first POST until every process had joined) and over the window."""

    node_join_pct: float = 0.0
    load_join_pct: float = 0.0
    node_window_pct: float = 0.0
    load_window_pct: float = 0.0
    #: Per second from the first POST until all joined: [node %, crowd %].
    joining: list[list[float]] = field(default_factory=list)


class _CpuMeter:
    """CPU seconds of a set of processes between two readings, as % of a core."""

    def __init__(self, pids: list[int]) -> None:
        self.procs = [psutil.Process(pid) for pid in pids]
        self.since = (cpu_seconds(self.procs), time.monotonic())

    def read(self) -> float:
        now = (cpu_seconds(self.procs), time.monotonic())
        (cpu0, t0), (cpu1, t1) = self.since, now
        self.since = now
        return round(100 * (cpu1 - cpu0) / max(t1 - t0, 1e-6), 1)


async def run_crowd(
    lab: Lab, phone: Host, whep_url: str, room: str, secret: str, *, viewers: int,
    processes: int, within_s: float, join_s: float, window_s: float, node_pid: int,
) -> tuple[CrowdShare, CrowdCpu]:  # fmt: skip
    """``viewers`` lean viewers from ``phone`` (one address), asking within
    ``within_s``, each given ``join_s`` more for its first frame; once all processes
    joined, every viewer measured over the same ``window_s``; the shares added up.

    The node (``node_pid``) is pinned to one CPU and the crowd's processes to the
    other, as the media benchmark does, and each side's CPU is measured: a crowd
    that used its whole core measured itself, not the node."""
    pin(node_pid, SERVER_CPU)
    cpu = CrowdCpu()
    start_at = time.time() + 5.0  # every process started, its imports done
    join_by = start_at + within_s + join_s
    go = lab.workdir / f"crowd-go-{time.time_ns()}"
    procs, outs, errs = [], [], []
    for k in range(processes):
        first = k * viewers // processes
        count = (k + 1) * viewers // processes - first
        argv = [sys.executable, "-m", "loadtests.netlab.crowd", "--url", whep_url,
                "--room", room, "--address", phone.address, "--first", str(first),
                "--count", str(count), "--total", str(viewers), "--within", str(within_s),
                "--start-at", str(start_at), "--join-by", str(join_by), "--go", str(go),
                "--window", str(window_s)]  # fmt: skip
        env = {**os.environ, "LIVECORE_SECRET": secret}
        procs.append(await lab.spawn(phone, argv, log=f"crowd{k}", env=env))
        pin(procs[-1].pid, LOAD_CPU)
        outs.append(lab.workdir / f"crowd{k}.out")
        errs.append(lab.workdir / f"crowd{k}.err")
    await asyncio.sleep(max(0.0, start_at - time.time()))  # pace: the crowd's first POST
    node, load = _CpuMeter([node_pid]), _CpuMeter([p.pid for p in procs])
    each_node, each_load = _CpuMeter([node_pid]), _CpuMeter([p.pid for p in procs])

    async def per_second() -> None:
        while True:
            await asyncio.sleep(1.0)  # pace: one CPU sample a second
            cpu.joining.append([each_node.read(), each_load.read()])

    sampler = asyncio.create_task(per_second())
    while not all(
        o.read_text() or p.returncode is not None for o, p in zip(outs, procs, strict=True)
    ):
        if time.time() > join_by + 30.0:
            raise TimeoutError("crowd processes did not finish joining")
        await asyncio.sleep(0.2)
    cpu.node_join_pct, cpu.load_join_pct = node.read(), load.read()
    sampler.cancel()
    go_at = time.time() + 1.0
    go.write_text(str(go_at))
    await asyncio.sleep(go_at - time.time() + 0.2)  # pace: the window starts
    node.read(), load.read()
    await asyncio.sleep(max(0.0, window_s - 0.4))  # pace: inside the window
    cpu.node_window_pct, cpu.load_window_pct = node.read(), load.read()
    async with asyncio.timeout(window_s + 90.0):
        await asyncio.gather(*(p.wait() for p in procs))
    total = CrowdShare()
    for k, (proc, out) in enumerate(zip(procs, outs, strict=True)):
        lines = out.read_text().splitlines()
        if proc.returncode != 0 or len(lines) < 2:
            err = errs[k].read_text(errors="replace")
            raise RuntimeError(f"crowd{k} exited {proc.returncode}: {err[-1500:]}")
        total.add(CrowdShare(**json.loads(lines[-1])))
    return total, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.netlab.crowd")
    parser.add_argument("--url", required=True, help="the WHEP endpoint, as the phone sees it")
    parser.add_argument("--room", required=True)
    parser.add_argument("--address", required=True, help="the phone's address (ICE host)")
    parser.add_argument("--first", type=int, default=0, help="this share's first viewer")
    parser.add_argument("--count", type=int, required=True, help="viewers in this share")
    parser.add_argument("--total", type=int, required=True, help="viewers in the crowd")
    parser.add_argument("--within", type=float, default=10.0, help="seconds to open all")
    parser.add_argument("--start-at", type=float, required=True, help="wall clock (time.time)")
    parser.add_argument("--join-by", type=float, required=True, help="wall clock")
    parser.add_argument("--go", required=True, help="file the driver writes to start measuring")
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured")
    args = parser.parse_args(argv)
    secret = os.environ.get("LIVECORE_SECRET")
    if not secret:
        parser.error("the node's token secret goes in $LIVECORE_SECRET")
    args.secret = secret.encode()
    share = asyncio.run(crowd(args))
    print(json.dumps(asdict(share)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
