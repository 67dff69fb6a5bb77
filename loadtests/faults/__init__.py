"""``python -m loadtests faults [--json]``: the fault scenarios, bounded (< 3 min).

Valkey SIGKILLed mid-stream through two nodes, a node SIGKILLed under its
viewers, floods and malformed traffic, connection churn. The last line of
``--json`` is one JSON object: scenarios, acked, lost, duplicated,
recovered_clients, gaps, crashes, leaked_fds, rss_growth_mb (and per scenario).
Exit code 1 when anything acknowledged was lost or doubled, a gap was seen or a
node crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtests.faults import churn, floods, nodekill, storekill


async def _all(root: Path) -> dict[str, Any]:
    per: dict[str, Any] = {}
    started = time.monotonic()
    per["store_kill"] = await storekill.run(root / "store", viewers=10, comments=40)
    per["store_kill"]["crashes"] = storekill.crashes()
    per["node_kill"] = await nodekill.run(root / "node", viewers=20, comments=150)
    per["floods"] = await floods.run(root / "floods")
    per["churn"] = await churn.run(root / "churn", connects=2000)

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
        "refused_store_unavailable": per["store_kill"]["refused"],
        "seconds": round(time.monotonic() - started, 1),
        "per_scenario": per,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests faults", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lc-faults-") as tmp:
        result = asyncio.run(_all(Path(tmp)))
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            if key != "per_scenario":
                print(f"{key:>26}  {value}")
    bad = result["lost"] or result["duplicated"] or result["gaps"] or result["crashes"]
    return 1 if bad else 0
