"""What every benchmark measures the same way: progress lines, percentiles, CPU time."""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import sys
import time
from typing import Any

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


class MachineCpu:
    """The whole machine's busy CPU over a window, to tell our processes' share from
    other processes' (a shared machine): started at construction."""

    def __init__(self) -> None:
        self._cores0 = psutil.cpu_times(percpu=True)

    def others_pct(self, ours_pct: float) -> float:
        """Percent of one core other processes were busy since construction, given
        ours (the sum over our processes, in percent of one core)."""
        cores1 = psutil.cpu_times(percpu=True)
        total = busy = 0.0
        for a, b in zip(self._cores0, cores1, strict=True):
            idle = (b.idle - a.idle) + (getattr(b, "iowait", 0) - getattr(a, "iowait", 0))
            span = sum(b) - sum(a)
            total += span
            busy += span - idle
        cores = len(cores1)
        return max(0.0, 100 * cores * busy / total - ours_pct) if total > 0 else 0.0

    def steal_pct(self) -> float:
        """Percent of one core the hypervisor took from this machine (``steal``) since
        construction: CPU a process here waited for without any process here using it."""
        cores1 = psutil.cpu_times(percpu=True)
        total = stolen = 0.0
        for a, b in zip(self._cores0, cores1, strict=True):
            total += sum(b) - sum(a)
            stolen += getattr(b, "steal", 0.0) - getattr(a, "steal", 0.0)
        return 100 * len(cores1) * stolen / total if total > 0 else 0.0


class GcTimer:
    """This process's garbage-collector pauses while in a ``with`` block."""

    def __init__(self) -> None:
        self.collections = 0
        self.paused_s = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collections += 1
            self.paused_s += time.perf_counter() - self._started

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def report_others(others_pct: float) -> None:
    """Log other processes' CPU; warn when they took enough to disturb the figures."""
    log(f"  other processes: {others_pct:.0f}% of a core in the window")
    if others_pct > 10:
        log(f"  warning: other processes used {others_pct:.0f}% of a core: figures disturbed")
