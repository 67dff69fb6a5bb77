"""``python -m loadtests media --compare``: the lean path and aiortc's senders, side by side.

Runs the ``media`` benchmark twice in one invocation with the same encoded
clip and the same options: first against a node started with ``--forwarder
lean``, then against a fresh node with ``--forwarder aiortc``. The last line
of stdout is one JSON object::

    {"ok": true, "lean": {...}, "aiortc": {...},
     "ratio": {"viewers_per_core": lean / aiortc, "us_per_packet": aiortc / lean}}

where each side has the keys of a plain ``media`` run (``fps``,
``server_us_per_packet``, ``viewers_per_core_est``, ``ttff_ms``,
``added_latency_ms``, ``codec_ops_on_forward_path``, ``load_cpu_pct``, ...).
A ratio is null when a side has no figure. The line has ``"ok": true``
(exit code 0) only when both runs were valid; otherwise it is ``{"ok":
false, "reason": "lean: ..."}`` with no figures, exit code 1
(``loadtests.verdict``); an invalid lean run ends the comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtests.stats import log
from loadtests.verdict import Outcome, crash_reason, finish


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return round(top / bottom, 2) if top and bottom else None


def compare(run_with: Callable[[str], Outcome]) -> int:
    """Run ``run_with("lean")`` then ``run_with("aiortc")``; print both and the ratio."""
    sides: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for forwarder in ("lean", "aiortc"):
        if problems:  # the first side is invalid: so is the comparison
            sides[forwarder] = {}
            break
        log(f"media --compare: --forwarder {forwarder}")
        try:
            result, found = run_with(forwarder)
        except Exception as exc:  # one side's crash is that side's problem
            result, found = {}, [crash_reason(exc)]
        for problem in found:
            log(f"media --compare: {forwarder}: FAILED: {problem}")
        problems += [f"{forwarder}: {problem}" for problem in found]
        sides[forwarder] = result
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
    return finish("media --compare", {"lean": lean, "aiortc": aiortc, "ratio": ratio}, problems)
