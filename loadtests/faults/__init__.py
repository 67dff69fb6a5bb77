"""``python -m loadtests faults [--json]``: the fault scenarios, bounded (< 3 min).

Valkey SIGKILLed mid-stream through two nodes, a node SIGKILLed under its
viewers, the origin node of live rooms SIGKILLed (each room ends within the
grace + 5 s, none stays live), floods and malformed traffic, slow consumers, half-open connections,
connection churn, and on a Valkey Cluster a primary SIGKILLed (its replica
takes over) and a live room's slot moved to another primary. The last line of
stdout is one JSON object with ``"ok": true``: scenarios, acked, lost,
duplicated, recovered_clients, gaps, crashes, leaked_fds, rss_growth_mb,
viewer_p99_ratio and churn_rate (the churn's), and per scenario. When
anything acknowledged was lost or doubled, a gap was seen, a node crashed or
a scenario itself crashed, it is ``{"ok": false, "reason": ...}`` with no
figures, exit code 1 (see ``loadtests.verdict``).

The churn's long form: ``--only churn --churn-rate 1000 --churn-seconds 30``.
With ``--workers N`` the churn runs twice, side by side: against one node
process, then against ``serve --workers N`` on the same port
(``churn_workers``, and ``workers_rate_ratio``, the visits/s of N over one).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtests.faults import (
    churn,
    floods,
    halfopen,
    nodekill,
    originkill,
    shardfail,
    slow,
    storekill,
)
from loadtests.stats import log
from loadtests.verdict import Outcome
from loadtests.verdict import run as run_verdict

NAMES = ("store_kill", "node_kill", "origin_kill", "floods", "slow_consumers", "half_open",
         "churn", "cluster_failover", "cluster_reshard")  # fmt: skip


async def _all(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    per: dict[str, Any] = {}
    only = set(args.only.split(",")) if args.only else set(NAMES)
    started = time.monotonic()
    if "store_kill" in only:
        per["store_kill"] = await storekill.run(root / "store", viewers=10, comments=40)
        per["store_kill"]["crashes"] = storekill.crashes()
    if "node_kill" in only:
        per["node_kill"] = await nodekill.run(root / "node", viewers=20, comments=150)
    if "origin_kill" in only:
        per["origin_kill"] = await originkill.run(root / "origin", rooms=3, viewers=4)
    if "floods" in only:
        per["floods"] = await floods.run(root / "floods")
    if "slow_consumers" in only:
        per["slow_consumers"] = await slow.run(root / "slow")
    if "half_open" in only:
        per["half_open"] = await halfopen.run(root / "halfopen")
    if only & {"cluster_failover", "cluster_reshard"}:
        shards = await shardfail.run(root / "cluster", viewers=6, comments=20)
        per["cluster_failover"] = {**shards["failover"], "crashes": shards["crashes"],
                                   "library_errors": shards["library_errors"]}  # fmt: skip
        per["cluster_reshard"] = shards["reshard"]
    if "churn" in only:
        options: dict[str, Any] = {
            "connects": 2000, "rate": args.churn_rate, "seconds": args.churn_seconds,
            "parallel": args.churn_parallel, "quiet_s": max(3.0, args.churn_seconds / 3),
        }  # fmt: skip
        per["churn"] = await churn.run(root / "churn", **options)
        if args.workers > 1:
            per["churn_workers"] = await churn.run(
                root / "churn-workers", workers=args.workers, **options
            )

    def total(key: str) -> Any:
        return sum(s.get(key, 0) for s in per.values())

    return {
        "scenarios": len(per),
        "acked": total("acked"),
        "lost": total("lost"),
        "duplicated": total("duplicated"),
        "recovered_clients": total("recovered_clients"),
        "gaps": total("gaps"),
        "crashes": total("crashes"),
        "leaked_fds": total("leaked_fds"),
        "rss_growth_mb": round(max(s.get("rss_growth_mb", 0.0) for s in per.values()), 1),
        "refused_store_unavailable": per.get("store_kill", {}).get("refused", 0),
        "stuck_live": total("stuck_live"),
        "late_rooms": total("late_rooms"),
        "origin_kill_ended_within_s": per.get("origin_kill", {}).get("ended_within_s"),
        "viewer_p99_ratio": per.get("churn", {}).get("viewer_p99_ratio"),
        "churn_rate": per.get("churn", {}).get("churn_rate"),
        "workers_rate_ratio": _ratio(per, "churn_rate"),
        "seconds": round(time.monotonic() - started, 1),
        "per_scenario": per,
    }


def _ratio(per: dict[str, Any], key: str) -> float | None:
    """``key`` of the churn against N workers over the same against one (None: no such run)."""
    one, many = per.get("churn", {}).get(key), per.get("churn_workers", {}).get(key)
    return round(many / one, 2) if one and many is not None else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests faults", description=__doc__)
    parser.add_argument("--json", action="store_true",
                        help="no table on stderr (the JSON line always ends stdout)")  # fmt: skip
    parser.add_argument(
        "--only",
        metavar="NAMES",
        default="",
        help=f"comma-separated scenarios to run (default all: {','.join(NAMES)})",
    )
    parser.add_argument(
        "--churn-rate",
        type=float,
        default=0.0,
        metavar="N",
        help="churn connects/s to attempt (default 0: as fast as the workers go, 2,000 connects)",
    )
    parser.add_argument(
        "--churn-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="churn for S seconds instead of 2,000 connects",
    )
    parser.add_argument(
        "--churn-parallel",
        type=int,
        default=32,
        metavar="K",
        help="connections the churn generator has open at once (default 32)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="also run the churn against `serve --workers N`, beside one process (default 1)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64:
        parser.error("--workers takes 1 to 64")
    if set(filter(None, args.only.split(","))) - set(NAMES):
        parser.error(f"--only takes names among {', '.join(NAMES)}")

    def body() -> Outcome:
        with tempfile.TemporaryDirectory(prefix="lc-faults-") as tmp:
            result = asyncio.run(_all(Path(tmp), args))
        if not args.json:  # the table for a person; the JSON line still ends stdout
            for key, value in result.items():
                if key != "per_scenario":
                    log(f"{key:>26}  {value}")
        problems = [
            f"{result['lost']} acknowledged messages lost" if result["lost"] else None,
            f"{result['duplicated']} doubled" if result["duplicated"] else None,
            f"{result['gaps']} gaps seen" if result["gaps"] else None,
            f"{result['crashes']} node crashes" if result["crashes"] else None,
            f"{result['stuck_live']} rooms stuck live" if result["stuck_live"] else None,
            f"{result['late_rooms']} rooms ended later than the grace + "
            f"{originkill.SLACK_S:g} s after their origin was killed"
            if result["late_rooms"]
            else None,
        ]
        return result, [p for p in problems if p]

    return run_verdict("faults", body)
