"""How every benchmark ends: one JSON line that says whether the run is valid.

The last line of stdout of every ``python -m loadtests <scenario>`` is one
JSON object with ``"ok"``:

- a valid run: ``{"ok": true, <its figures>}``, exit code 0 (or the
  scenario's own code for a valid run that missed a target it was given:
  ``replay``'s SLOs, 99);
- an invalid run: ``{"ok": false, "reason": "..."}``, exit code 1, and no
  figures, since a number from such a run could be taken for a result. Invalid:
  viewers or clients that failed to connect, requests the server refused, a
  load generator saturated where the figure is meant to be the server's, a
  check of the scenario that failed (a lost message, a transcoded frame), a
  scenario that crashed or a target that could not be reached. The figures it
  did gather go to stderr, to diagnose it.

Bad options are refused before any run (argparse's message, exit code 2).
A benchmark reports through ``finish`` (figures and the problems it found)
or ``run`` (which also turns an exception into an invalid run).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from loadtests.stats import log

EXIT_INVALID = 1
#: A valid run that missed a bound it was given (``--max-p99-ms``, ``replay``'s SLOs).
EXIT_MISSED = 99

LOAD_SATURATED_PCT = 90.0
"""Load CPU (% of the one load core) above which the figures are the generator's."""

Outcome = tuple[dict[str, Any], list[str]]
"""A benchmark's figures and the problems that make its run invalid (none: valid)."""


class Invalid(Exception):
    """Raised inside a benchmark: the run cannot give a result (the message says why)."""


def saturated(load_cpu_pct: float | None, what: str = "the figures") -> str | None:
    """The problem when the load generator used more than ``LOAD_SATURATED_PCT`` of
    its core (then ``what`` would be the generator's, not the server's), else None."""
    if load_cpu_pct is None or load_cpu_pct <= LOAD_SATURATED_PCT:
        return None
    return (
        f"the load generator was saturated ({load_cpu_pct:.0f}% of its CPU): "
        f"{what} would be its own, not the server's"
    )


#: Error codes that say the run met the harness's own set-up (a limit, a token, a
#: registry it should have filled), not how the server serves: a run with them
#: measured the set-up.
SETUP_CODES = ("rate_limited", "unknown_community", "token_")


def over(what: str, value: float, bound: float | None, unit: str = "ms") -> list[str]:
    """``slo_missed`` entries: ``what`` was ``value``, above the ``bound`` a run was
    given (none without a bound)."""
    if bound is None or value <= bound:
        return []
    return [f"{what} {value:g} {unit} > {bound:g} {unit}"]


def refused(errors: dict[str, int], what: str = "requests") -> str | None:
    """The problem when ``errors`` (code → count) holds set-up refusals, else None."""
    bad = {code: n for code, n in errors.items() if n and code.startswith(SETUP_CODES)}
    if not bad:
        return None
    return f"{sum(bad.values())} {what} were refused by the set-up: {bad}"


def line(result: dict[str, Any] | None, problems: Iterable[str | None]) -> dict[str, Any]:
    """The last stdout line of a run: its figures under ``"ok": true`` when there is
    no problem, else only ``"ok": false`` and the ``reason``."""
    found = [p for p in problems if p]
    if result is None and not found:
        found = ["the run gave no result"]
    if found:
        return {"ok": False, "reason": "; ".join(found)}
    assert result is not None
    return {"ok": True, **{k: v for k, v in result.items() if k not in ("ok", "reason")}}


def finish(
    name: str,
    result: dict[str, Any] | None,
    problems: Iterable[str | None] = (),
    *,
    code_if_ok: int = 0,
) -> int:
    """Print the run's last line (see ``line``); returns the exit code: ``code_if_ok``
    for a valid run, ``EXIT_INVALID`` otherwise (its figures go to stderr only)."""
    out = line(result, problems)
    if not out["ok"]:
        log(f"{name}: INVALID RUN: {out['reason']}")
        if result:
            log(f"{name}: figures withheld: {json.dumps(result, default=str)}")
    print(json.dumps(out, default=str), flush=True)
    return code_if_ok if out["ok"] else EXIT_INVALID


def crash_reason(exc: BaseException) -> str:
    """How a run that raised ``exc`` is reported."""
    if isinstance(exc, Invalid):
        return str(exc)
    return f"the run crashed: {type(exc).__name__}: {str(exc)[:300]}"


def run(name: str, body: Callable[[], Outcome]) -> int:
    """Run ``body`` (the whole benchmark, node start to figures) and ``finish`` it; any
    exception it raises (a crash, an unreachable target, ``Invalid``) makes the
    run invalid, with the traceback on stderr. ``KeyboardInterrupt`` and
    ``SystemExit`` (a SIGTERM, a usage error) pass through. A valid run whose
    result lists ``slo_missed`` (bounds it was given and missed) exits
    ``EXIT_MISSED``."""
    try:
        result, problems = body()
    except Exception as exc:
        if not isinstance(exc, Invalid):
            log(traceback.format_exc().rstrip())
        return finish(name, None, [crash_reason(exc)])
    return finish(name, result, problems, code_if_ok=EXIT_MISSED if result.get("slo_missed") else 0)
