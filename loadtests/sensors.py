"""``python -m loadtests sensors``: devices streaming readings into batches through one node.

Registers ``--batches`` batches, gives each ``--devices`` device tokens, then
every device posts ``--per-post`` readings (cold chain and humidity, one a
second back from now, a few outside the band) as fast as its rate limit and
the node allow, until ``--duration`` has passed. Prints one JSON object (last
line of stdout): ``"ok": true`` with ``readings_per_s``, ``p99_ingest_ms``
(POST → 202), ``p50_ingest_ms``, ``readings``, ``refused``,
``valkey_bytes_per_batch`` (MEMORY USAGE of a batch's keys at the end),
``valkey_bytes_per_reading``, ``node_cpu``, ``loadgen_cpu`` (cores); or
``{"ok": false, "reason": ...}``, no figures and exit code 1 (see
``loadtests.verdict``) when a post was refused (the devices keep to their own
limits, so a refusal means the run measured a limit, not the node), nothing
was accepted, or the load generator's core was saturated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

import httpx
import psutil
import redis.asyncio

from livecore.store.trace import BatchStore
from loadtests.local import LOAD_CPU, Cluster, local_cluster, pin, target_cluster
from loadtests.stats import cpu_seconds, log, percentile
from loadtests.verdict import Outcome, saturated
from loadtests.verdict import run as run_verdict


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests sensors", description=__doc__)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--devices", type=int, default=5, help="devices per batch")
    p.add_argument("--per-post", type=int, default=250, help="readings per POST (≤ 500)")
    p.add_argument("--concurrency", type=int, default=24, help="posts in flight")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load (≤ 60)")
    p.add_argument("--target", action="append", help="a running node (loopback only)")
    p.add_argument("--json", action="store_true", help="print the JSON result last")
    args = p.parse_args(argv)
    args.duration = min(args.duration, 60.0)
    args.per_post = max(1, min(args.per_post, 500))
    return args


async def _post(client: httpx.AsyncClient, url: str, **kw: Any) -> httpx.Response:
    """A brand's set-up write, waiting out its per-user write limit."""
    for _ in range(50):
        answer = await client.post(url, **kw)
        if answer.status_code != 429:
            return answer
        await asyncio.sleep(float(answer.headers.get("retry-after", "1")) / 4)
    raise RuntimeError(f"{url}: still rate limited")


async def setup(cluster: Cluster, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Batches and device tokens: [(batch, device, token)]."""
    admin = {"Authorization": f"Bearer {cluster.token('admin', 'loadtest', '*')}"}
    base = cluster.urls[0]
    devices = []
    async with httpx.AsyncClient(timeout=10) as client:
        for b in range(args.batches):
            batch = f"load-{b}"
            body = {"id": batch, "product": "冷链牛奶", "brand": "loadtest", "origin": "loopback"}
            answer = await _post(client, f"{base}/api/batches", json=body, headers=admin)
            if answer.status_code not in (201, 409):
                raise RuntimeError(f"register {batch}: {answer.status_code} {answer.text}")
            for d in range(args.devices):
                got = await _post(client, f"{base}/api/batches/{batch}/device-token",
                                  json={"device": f"logger-{d}"}, headers=admin)  # fmt: skip
                devices.append((batch, f"logger-{d}", got.json()["token"]))
    return devices


def readings(n: int, end: float, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        at = end - (n - i)
        if i % 2:
            out.append({"kind": "humidity_pct", "value": round(rng.uniform(60, 90), 1), "at": at})
        else:
            value = round(rng.uniform(2, 7.5) if rng.random() > 0.01 else 9.2, 2)
            out.append({"kind": "cold_chain_c", "value": value, "at": at})
    return out


async def drive(cluster: Cluster, devices: list[tuple[str, str, str]], args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Each worker takes the next device that may post (5/s, 200 readings/s each)."""
    rng = random.Random(7)
    latencies: list[float] = []
    accepted = refused = 0
    clock: dict[str, float] = {}
    # Per device: next time it may post without breaking its budget.
    per_device_s = max(0.2, args.per_post / 200.0)
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue(maxsize=len(devices))
    for d in devices:
        queue.put_nowait(d)
    async with httpx.AsyncClient(timeout=30) as client:  # warm up: scripts loaded, key read
        batch, _device, tok = devices[0]
        body = {"readings": readings(1, time.time(), rng)}
        await client.post(f"{cluster.urls[0]}/api/batches/{batch}/readings", json=body,
                          headers={"Authorization": f"Bearer {tok}"})  # fmt: skip
    stop = time.monotonic() + args.duration
    start = time.monotonic()
    last = start

    async def worker(i: int) -> None:
        nonlocal accepted, refused, last
        base = cluster.urls[i % len(cluster.urls)]
        async with httpx.AsyncClient(timeout=30) as client:
            while time.monotonic() < stop:
                try:
                    batch, device, tok = await asyncio.wait_for(
                        queue.get(), stop - time.monotonic()
                    )
                except TimeoutError:
                    return
                wait = clock.get(tok, 0.0) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                body = json.dumps({"readings": readings(args.per_post, time.time(), rng)})
                sent = time.perf_counter()
                answer = await client.post(
                    f"{base}/api/batches/{batch}/readings", content=body,
                    headers={"Authorization": f"Bearer {tok}", "Content-Type": "application/json"},
                )  # fmt: skip
                latencies.append((time.perf_counter() - sent) * 1000)
                if answer.status_code == 202:
                    accepted += answer.json()["accepted"]
                else:
                    refused += 1
                last = time.monotonic()
                clock[tok] = last + per_device_s
                queue.put_nowait((batch, device, tok))

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    return accepted, refused, latencies, last - start


async def run(cluster: Cluster, args: argparse.Namespace) -> Outcome:
    devices = await setup(cluster, args)
    log(f"{args.batches} batches × {args.devices} devices; {args.per_post} readings per post")
    procs = cluster.processes()
    me = psutil.Process()
    server0, client0 = cpu_seconds(procs), cpu_seconds([me])
    accepted, refused, latencies, elapsed = await drive(cluster, devices, args)
    server_cpu = (cpu_seconds(procs) - server0) / elapsed
    client_cpu = (cpu_seconds([me]) - client0) / elapsed
    bytes_per_batch = None
    if cluster.redis_url:
        client = redis.asyncio.Redis.from_url(cluster.redis_url)
        store = BatchStore(client, signing_key=None)  # type: ignore[arg-type]
        sizes = [await store.bytes_used(f"load-{b}") for b in range(min(args.batches, 5))]
        bytes_per_batch = round(sum(sizes) / len(sizes))
        await client.aclose()
    per_batch = accepted / max(1, args.batches)
    result = {
        "readings": accepted,
        "refused": refused,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(accepted / elapsed),
        "p50_ingest_ms": round(percentile(latencies, 0.5) or 0, 1),
        "p99_ingest_ms": round(percentile(latencies, 0.99) or 0, 1),
        "valkey_bytes_per_batch": bytes_per_batch,
        "node_cpu": round(server_cpu, 2),
        "loadgen_cpu": round(client_cpu, 2),
        "valkey_bytes_per_reading": round(bytes_per_batch / per_batch, 1)
        if bytes_per_batch
        else None,
    }
    log(f"{result['readings_per_s']} readings/s, p99 {result['p99_ingest_ms']} ms, "
        f"{bytes_per_batch} Valkey bytes per batch")  # fmt: skip
    problems = [
        f"{refused} posts were refused" if refused else None,
        None if accepted else "no reading was accepted",
        saturated(100 * client_cpu, "the ingest rate and latency"),
    ]
    return result, [p for p in problems if p]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    pin(0, LOAD_CPU)

    def body() -> Outcome:
        if args.target:
            outcome: Outcome = asyncio.run(run(target_cluster(args.target), args))
            return outcome
        with local_cluster(1) as cluster:
            outcome = asyncio.run(run(cluster, args))
            return outcome

    return run_verdict("sensors", body)
