"""``python -m loadtests media --compare``: the lean path and aiortc's senders, side by side.

Runs the ``media`` benchmark twice in one invocation with the same encoded
clip and the same options: first against a node started with ``--forwarder
lean``, then against a fresh node with ``--forwarder aiortc``. The last line
of stdout is one JSON object::

    {"lean": {...}, "aiortc": {...},
     "ratio": {"viewers_per_core": lean / aiortc, "us_per_packet": aiortc / lean}}

where each side has the keys of a plain ``media`` run (``fps``,
``server_us_per_packet``, ``viewers_per_core_est``, ``ttff_ms``,
``added_latency_ms``, ``codec_ops_on_forward_path``, ...) plus
``load_cpu_pct`` / ``load_saturated`` (the load generator's CPU; when
saturated, that side's figures are the generator's, not the server's) and
``problems``. A ratio is null when a side has no figure. Exit code 0 when
both runs passed their checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from loadtests.stats import log
from loadtests.whep import WhepRefused

Outcome = tuple[dict[str, Any], list[str]]


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 2) if top and bottom else None


def compare(run_with: Callable[[str], Outcome]) -> int:
    """Run ``run_with("lean")`` then ``run_with("aiortc")``; print both and the ratio."""
    sides: dict[str, dict[str, Any]] = {}
    failed = False
    for forwarder in ("lean", "aiortc"):
        log(f"media --compare: --forwarder {forwarder}")
        try:
            result, problems = run_with(forwarder)
        except (WhepRefused, RuntimeError, TimeoutError, OSError, httpx.HTTPError) as exc:
            result, problems = {}, [f"{type(exc).__name__}: {exc}"]
        for problem in problems:
            log(f"media --compare: {forwarder}: FAILED: {problem}")
        if result.get("load_saturated"):
            pct = result.get("load_cpu_pct")
            log(f"media --compare: {forwarder}: the load generator saturated ({pct}% of its "
                "CPU): its figures bound this side")  # fmt: skip
        failed = failed or bool(problems)
        sides[forwarder] = {**result, "problems": problems}
    lean, aiortc = sides["lean"], sides["aiortc"]
    ratio = {
        "viewers_per_core": _ratio(lean.get("viewers_per_core_est"),
                                   aiortc.get("viewers_per_core_est")),
        "us_per_packet": _ratio(aiortc.get("server_us_per_packet"),
                                lean.get("server_us_per_packet")),
    }  # fmt: skip
    log(f"media --compare: lean {lean.get('server_us_per_packet')} µs/packet, "
        f"~{lean.get('viewers_per_core_est')} viewers/core; aiortc "
        f"{aiortc.get('server_us_per_packet')} µs/packet, "
        f"~{aiortc.get('viewers_per_core_est')} viewers/core; ratio {ratio}")  # fmt: skip
    print(json.dumps({"lean": lean, "aiortc": aiortc, "ratio": ratio}))
    return 1 if failed else 0
