"""What every benchmark measures the same way: progress lines, percentiles, CPU time."""

from __future__ import annotations

import argparse
import contextlib
import math
import sys

import psutil


def log(message: str) -> None:
    """A progress or summary line on stderr (stdout is kept for the JSON result)."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of ``procs`` (processes that are gone count 0)."""
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """A scenario's ``--help``: its description as written, every option's default shown."""
