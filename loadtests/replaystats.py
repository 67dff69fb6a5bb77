"""A replay's figures: the load processes' results merged, compared with the trace.

``summarise`` turns the per-process results into the run's JSON object and
the per-second series the report plots. Two comparisons with the trace:

- **event mix**: per kind, what was sent against what the trace holds in the
  played window times the scale (host actions once); ``event_mix_error_pct``
  is ``100 · |sent − expected| / expected`` per kind;
- **inter-arrival shape**: the Kolmogorov–Smirnov distance between the gaps
  between comments in the trace (divided by the speed) and the gaps between
  the comments the replay sent for copy 0 of the audience (0 = identical
  distributions, 1 = disjoint).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from typing import Any

from livecore.audience.trace import HOST, Kind, Trace
from loadtests.replayworker import REPLAYED
from loadtests.stats import percentile

HOST_SENT = (Kind.PRODUCT_PIN, Kind.PRICE_DROP, Kind.POLL_OPEN, Kind.GROUPBUY_OPEN)


def expected_mix(trace: Trace, window_s: float, speed: float, scale: int) -> dict[str, int]:
    """Events per kind the replay should send in ``window_s`` wall seconds."""
    limit = window_s * speed * 1000
    out: Counter[str] = Counter()
    for e in trace.events:
        if e.t_ms >= limit:
            break
        if e.kind in REPLAYED and e.client != HOST:
            out[e.kind.label] += scale
        elif e.kind in HOST_SENT:
            out[e.kind.label] += 1
    return dict(out)


def ks_distance(a: list[float], b: list[float]) -> float | None:
    """Two-sample Kolmogorov–Smirnov statistic; None when either sample is tiny."""
    if len(a) < 5 or len(b) < 5:
        return None
    a, b = sorted(a), sorted(b)
    worst = 0.0
    for x in a + b:
        fa = bisect.bisect_right(a, x) / len(a)
        fb = bisect.bisect_right(b, x) / len(b)
        worst = max(worst, abs(fa - fb))
    return round(worst, 3)


def trace_gaps(trace: Trace, window_s: float, speed: float) -> list[float]:
    limit = window_s * speed * 1000
    times = [e.t_ms / 1000 / speed for e in trace.events
             if e.kind == Kind.COMMENT and e.t_ms < limit]  # fmt: skip
    return [b - a for a, b in itertools.pairwise(times)]


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def summarise(
    results: list[dict[str, Any]],
    trace: Trace,
    *,
    window_s: float,
    speed: float,
    scale: int,
    host_sent: Counter[str],
    server: dict[str, list[float]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's JSON object and the report's series (see the module doc)."""
    sent: Counter[str] = Counter(host_sent)
    errors: Counter[str] = Counter()
    for r in results:
        sent.update(r["sent"])
        errors.update(r["errors"])
    latencies = [x for r in results for x in r["latencies"]]
    maxima = [r["latency_max"] for r in results if r["latency_max"] is not None]
    expected = expected_mix(trace, window_s, speed, scale)
    mix = {
        kind: {"expected": n, "sent": sent.get(kind, 0),
               "error_pct": round(100 * abs(sent.get(kind, 0) - n) / n, 2)}
        for kind, n in sorted(expected.items()) if n
    }  # fmt: skip
    seconds = len(results[0]["series"]["sent"]) if results else 0
    series: dict[str, Any] = {"t": list(range(seconds))}
    for key in ("sent", "delivered", "connected"):
        series[key] = [sum(r["series"][key][i] for r in results) for i in range(seconds)]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        series[name] = [
            _r(percentile([x for r in results for x in r["lat_bins"][i]], q))
            for i in range(seconds)
        ]
    codes = sorted({code for r in results for b in r["errors_by_second"] for code in b})
    series["errors"] = {}
    for code in codes:
        totals = [sum(r["errors_by_second"][i].get(code, 0) for r in results)
                  for i in range(seconds)]  # fmt: skip
        series["errors"][code] = [b - a for a, b in itertools.pairwise([0, *totals])]
    series["cpu_pct"] = server.get("cpu_pct", [])[:seconds]
    series["rss_mb"] = server.get("rss_mb", [])[:seconds]
    times = sorted(t for r in results for t in r["comment_times"])
    replay_gaps = [b - a for a, b in itertools.pairwise(times)]
    cpu = series["cpu_pct"]
    result = {
        "clients_established": sum(r["established"] for r in results),
        "clients_failed": sum(r["failed"] for r in results),
        "reconnects": sum(r["reconnects"] for r in results),
        "sent": sum(sent.values()),
        "acked": sum(r["acked"] for r in results),
        "delivered": sum(r["delivered"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "latency_ms": {
            "p50": _r(percentile(latencies, 0.5)),
            "p95": _r(percentile(latencies, 0.95)),
            "p99": _r(percentile(latencies, 0.99)),
            "max": _r(max(maxima, default=None)),
        },
        "errors": sum(errors.values()),
        "errors_by_code": dict(errors.most_common()),
        "event_mix_error_pct": {kind: row["error_pct"] for kind, row in mix.items()},
        "event_mix": mix,
        "skipped": dict(sum((Counter(r["skipped"]) for r in results), Counter())),
        "interarrival_ks": ks_distance(trace_gaps(trace, window_s, speed), replay_gaps),
        "delivered_per_s_peak": max(series["delivered"], default=0),
        "server_cpu_pct": _r(sum(cpu) / len(cpu)) if cpu else None,
        "server_rss_mb": _r(max(series["rss_mb"], default=None)),
    }
    return result, series
