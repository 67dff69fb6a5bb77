"""Connection churn against one node while a room streams: no fds, memory or state
kept, and the room's viewers as fast during the churn as before it.

The churn comes from its own process (:mod:`loadtests.faults.churngen`); this
one holds the host and the watching viewers, whose p99 latency is measured in
a quiet phase and then during the churn, side by side in one run.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import psutil

from loadtests.faults.audience import Audience
from loadtests.faults.cluster import ROOT, NodeProc, Valkey, create_room
from loadtests.faults.nodemetrics import NodeMetrics

#: A process busier than this share of one core is called the limit.
BUSY = 0.85


async def generate(node: NodeProc, **options: float) -> dict[str, Any]:
    """Run the churn generator against ``node``; its figures."""
    flags = [f"--{name}={value}" for name, value in options.items()]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.faults.churngen", str(node.port), *flags,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"churn generator exited {proc.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def verdict(
    target: float, gen: dict[str, Any], node_cpu: float, machine: float, workers: int = 1
) -> str:
    """What held the rate back: nothing, the load generator, the node, or the machine.

    ``node_cpu`` is in cores (over its ``workers`` processes), ``machine`` the share of
    every core busy (all processes).
    """
    if target and gen["rate"] >= 0.95 * target:
        return "none (target reached)"
    gen_busy = gen["cpu_s"] / gen["seconds"] >= BUSY
    node_busy = node_cpu >= BUSY * workers
    if gen_busy and node_busy:
        return "both (the node and the generator each fill a core)"
    if node_busy:
        return "server"
    if gen_busy:
        return "load generator"
    if machine >= BUSY:
        return "the machine (its cores busy with other processes too)"
    return "load generator (pace)" if gen["late"] else "neither (latency-bound workers)"


async def run(
    root: Path,
    *,
    connects: int = 2000,
    parallel: int = 32,
    rate: float = 0.0,
    seconds: float = 0.0,
    viewers: int = 8,
    quiet_s: float = 3.0,
    workers: int = 1,
) -> dict[str, Any]:
    """One churn run against a node of ``workers`` processes on one port."""
    store = Valkey(root)
    store.start()
    node = NodeProc(root / "n", store.url, workers=workers).start(timeout=60)
    try:
        create_room(node)
        audience = Audience(node, viewers)
        await audience.start()
        # a warm-up (the room's reading, the store pool; its connections, bounded at
        # 64, are not counted as the node's fds below)
        await generate(node, connects=parallel * 4, parallel=parallel, first=10**8)
        audience.phase = "quiet"
        await asyncio.sleep(quiet_s)
        before = await NodeMetrics.read_all(node.metrics_urls())
        fds, rss = node.fds_besides_store(), node.rss_mb()
        cpu = node.cpu_s()
        psutil.cpu_percent()  # starts the machine-wide measurement
        audience.phase = "churn"
        gen = await generate(node, rate=rate, seconds=seconds, connects=0 if seconds else connects,
                             parallel=parallel)  # fmt: skip
        node_cpu = (node.cpu_s() - cpu) / gen["seconds"]
        machine = psutil.cpu_percent() / 100
        audience.phase = "after"
        for _ in range(20):  # closing handshakes finish within 3 s
            if node.fds_besides_store() <= fds:
                break
            await asyncio.sleep(0.5)
        after = await NodeMetrics.read_all(node.metrics_urls())
        grown = sorted(k for k, v in after.state.items() if v > before.state.get(k, 0))
        leaked_fds = max(0, node.fds_besides_store() - fds)
        rss_growth = max(0.0, node.rss_mb() - rss)
        delivery = await audience.stop()
        return {
            **delivery,
            "connects": gen["done"],
            "failed_connects": gen["failed"],
            "connects_per_s": gen["rate"],
            "churn_rate": gen["rate"],
            "target_rate": rate or None,
            "churn_seconds": gen["seconds"],
            "viewer_p99_ratio": audience.ratio("churn"),
            "generator_cpu": round(gen["cpu_s"] / gen["seconds"], 2),
            "node_cpu": round(node_cpu, 2),
            "workers": workers,
            "machine_cpu": round(machine, 2),
            "limit": verdict(rate, gen, node_cpu, machine, workers),
            "structures_grown": grown,
            "leaked_fds": leaked_fds,
            "rss_growth_mb": round(rss_growth, 1),
            "crashes": node.crashed(),
        }
    finally:
        node.stop()
        store.stop()
