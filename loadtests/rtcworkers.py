"""The load processes of a media run: lean viewers and probes, driven over a pipe.

``lean_worker_main`` and ``probe_worker_main`` are the targets of
``loadtests.workers.Worker`` processes; each pins itself to the load CPU,
stops by itself at ``WorkerSpec.deadline_wall`` and speaks the small message
protocol in its docstring with ``loadtests.media``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import httpx

from loadtests.local import pin
from loadtests.rtcviewer import PROBE_TIMEOUT_S, LeanViewer, ProbeResult, run_probe
from loadtests.workers import recv_until, run_loop


@dataclass
class WorkerSpec:
    """What a load process needs: where to join, as whom, and when to give up."""

    whep_url: str
    tokens: list[str]
    deadline_wall: float
    """``time.time()`` after which the process stops by itself, whatever the driver says."""
    cpu: int
    concurrency: int = 8
    nice: int = 0
    probe_offsets: list[float] = field(default_factory=list)
    probe_stay_s: float = 1.0


def _start_process(spec: WorkerSpec) -> None:
    pin(os.getpid(), spec.cpu)
    if spec.nice:
        with contextlib.suppress(OSError):
            os.nice(spec.nice)


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=64), trust_env=False
    )


def lean_worker_main(pipe: Connection, spec: WorkerSpec) -> None:
    """A load process of lean viewers; talks to ``loadtests.media`` over ``pipe``.

    Protocol: → ``("progress", joined, failed)`` while joining, then
    ``("joined", joined, failed, errors)``; ← ``"start"``: record;
    ← ``"stop"``: → ``("result", {...})``; ← ``"close"``: leave and exit.
    """
    _start_process(spec)
    run_loop(lambda: _lean_worker(pipe, spec))


async def _lean_worker(pipe: Connection, spec: WorkerSpec) -> None:
    viewers: list[LeanViewer] = []
    errors: dict[str, int] = {}
    failed = 0
    gate = asyncio.Semaphore(spec.concurrency)
    join_deadline = time.monotonic() + max(5.0, spec.deadline_wall - time.time())
    async with _client() as client:

        async def join(token: str) -> None:
            nonlocal failed
            async with gate:
                try:
                    viewers.append(
                        await LeanViewer.join(client, spec.whep_url, token, join_deadline)
                    )
                except Exception as exc:  # counted and reported
                    failed += 1
                    key = f"{type(exc).__name__}: {str(exc)[:120]}"
                    errors[key] = errors.get(key, 0) + 1
            done = len(viewers) + failed
            if done % 25 == 0 or done == len(spec.tokens):
                pipe.send(("progress", len(viewers), failed))

        await asyncio.gather(*(join(t) for t in spec.tokens))
        pipe.send(("joined", len(viewers), failed, errors))
        started = stopped = 0.0
        base: list[tuple[int, int, int, int]] = []
        while (message := await recv_until(pipe, spec.deadline_wall)) not in (None, "close"):
            if message == "start":
                base = [(v.counter.packets, v.counter.bytes, v.counter.frames, v.counter.lost)
                        for v in viewers]  # fmt: skip
                for v in viewers:
                    v.counter.recording = True
                started = time.monotonic()
            elif message == "stop":
                stopped = time.monotonic()
                for v in viewers:
                    v.counter.recording = False
                per_viewer = []
                for v, (p0, b0, f0, l0) in zip(viewers, base, strict=True):
                    c = v.counter
                    per_viewer.append({
                        "packets": c.packets - p0, "bytes": c.bytes - b0,
                        "frames": c.frames - f0, "lost": c.lost - l0,
                        "frame_ts": c.frame_ts, "frame_at": c.frame_at,
                        "open": v.pc.connectionState == "connected",
                    })  # fmt: skip
                pipe.send(("result", {"window_s": stopped - started, "viewers": per_viewer}))
        await asyncio.gather(*(v.close(client) for v in viewers), return_exceptions=True)


def probe_worker_main(pipe: Connection, spec: WorkerSpec) -> None:
    """A load process of probe viewers, one per token, each joining at its offset.

    ← ``("start", t0)``: probe ``i`` joins at ``t0 + probe_offsets[i]``
    (``time.monotonic()``); → ``("result", [ProbeResult as dict, ...])``
    once all are done; ← ``"close"``: exit.
    """
    _start_process(spec)
    run_loop(lambda: _probe_worker(pipe, spec))


async def _probe_worker(pipe: Connection, spec: WorkerSpec) -> None:
    message = await recv_until(pipe, spec.deadline_wall)
    if not (isinstance(message, tuple) and message[0] == "start"):
        return
    t0 = float(message[1])
    deadline = time.monotonic() + max(1.0, spec.deadline_wall - time.time())
    async with _client() as client:

        async def probe(token: str, offset: float) -> ProbeResult:
            await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
            mine = min(deadline, time.monotonic() + PROBE_TIMEOUT_S + spec.probe_stay_s)
            return await run_probe(client, spec.whep_url, token, spec.probe_stay_s, mine)

        results = await asyncio.gather(
            *(probe(t, o) for t, o in zip(spec.tokens, spec.probe_offsets, strict=True))
        )
    pipe.send(("result", [r.__dict__ for r in results]))
    await recv_until(pipe, spec.deadline_wall)
