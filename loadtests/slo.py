"""Pass/fail thresholds for a load run, k6 style: ``--slo p99_ms=250,lost=0,errors=0``.

Every threshold is an upper bound on one figure of the run's JSON result;
a run that misses any exits with ``EXIT_SLO_MISSED`` (99, as k6 does) after
printing its result, so a CI job fails on it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

EXIT_SLO_MISSED = 99


def _latency(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda result: result["latency_ms"][key]


def _mix_max(result: dict[str, Any]) -> float | None:
    values = result["event_mix_error_pct"].values()
    return max(values, default=0.0)


FIGURES: dict[str, tuple[Callable[[dict[str, Any]], float | None], str]] = {
    "p50_ms": (_latency("p50"), "median send → receive latency, ms"),
    "p95_ms": (_latency("p95"), "95th percentile latency, ms"),
    "p99_ms": (_latency("p99"), "99th percentile latency, ms"),
    "max_ms": (_latency("max"), "worst latency, ms"),
    "lost": (lambda r: r["lost"], "events a connected viewer never got"),
    "errors": (lambda r: r["errors"], "refused messages + failed connects + unexpected closes"),
    "clients_failed": (lambda r: r["clients_failed"], "viewers that could not connect"),
    "mix_pct": (_mix_max, "worst per-kind difference from the trace's event mix, %"),
}


def parse(text: str) -> dict[str, float]:
    """``name=limit,...`` → {name: limit}; raises ``argparse.ArgumentTypeError``."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in FIGURES:
            known = ", ".join(FIGURES)
            raise argparse.ArgumentTypeError(f"bad SLO {part!r}: use name=limit with {known}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad SLO limit in {part!r}") from None
    return out


def check(result: dict[str, Any], slos: dict[str, float]) -> list[str]:
    """The thresholds ``result`` misses, as readable lines (empty: all met)."""
    missed = []
    for name, limit in slos.items():
        figure, _ = FIGURES[name]
        value = figure(result)
        if value is None or value > limit:
            missed.append(f"{name} = {value} (limit {limit:g})")
    return missed


def help_text() -> str:
    """The figures and their meaning (for an argparse help: ``%`` escaped)."""
    text = "; ".join(f"{name}: {what}" for name, (_, what) in FIGURES.items())
    return text.replace("%", "%%")
