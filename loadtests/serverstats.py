"""What a benchmark reads from the server side: its processes and its /metrics."""

from __future__ import annotations

import contextlib
import re

import httpx
import psutil

from loadtests.local import Cluster

_CODEC_OPS = re.compile(r"^livecore_media_codec_ops(?:\{[^}]*\})?\s+(\S+)", re.M)


async def codec_ops(client: httpx.AsyncClient, base: str) -> int | None:
    """Sum of ``livecore_media_codec_ops`` on the node's /metrics, None if absent."""
    try:
        text = (await client.get(f"{base}/metrics", timeout=10)).text
    except httpx.HTTPError:
        return None
    values = _CODEC_OPS.findall(text)
    return round(sum(float(v) for v in values)) if values else None


def server_processes(cluster: Cluster) -> list[psutil.Process]:
    """The node processes: ours, or whoever listens on the ``--target`` port(s)."""
    if cluster.pids:
        return cluster.processes()
    ports = {httpx.URL(u).port for u in cluster.urls}
    found: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            port = getattr(conn.laddr, "port", None)
            if conn.status == psutil.CONN_LISTEN and port in ports and conn.pid:
                found.append(psutil.Process(conn.pid))
    return found


_GC_PAUSE = re.compile(r'^livecore_gc_pause_seconds_(count|sum)\{generation="(\d)"\}\s+(\S+)', re.M)


async def gc_pauses(client: httpx.AsyncClient, bases: list[str]) -> dict[str, list[float]]:
    """The nodes' garbage-collector pauses so far, summed over ``bases``:
    ``{generation: [collections, seconds]}`` from ``livecore_gc_pause_seconds``."""
    total: dict[str, list[float]] = {}
    for base in bases:
        text = (await client.get(f"{base}/metrics", timeout=10)).text
        for kind, generation, value in _GC_PAUSE.findall(text):
            entry = total.setdefault(generation, [0.0, 0.0])
            entry[0 if kind == "count" else 1] += float(value)
    return total


def gc_between(
    before: dict[str, list[float]], after: dict[str, list[float]]
) -> dict[str, dict[str, float]]:
    """``{generation: {"n": collections, "ms": paused}}`` between two :func:`gc_pauses`,
    the generations that ran at all."""
    out: dict[str, dict[str, float]] = {}
    for generation, (n, seconds) in sorted(after.items()):
        n0, s0 = before.get(generation, [0.0, 0.0])
        if n > n0:
            out[generation] = {"n": int(n - n0), "ms": round(1000 * (seconds - s0), 1)}
    return out
