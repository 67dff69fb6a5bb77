"""``python -m loadtests <name> [options]``: run one benchmark."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "fanout": "loadtests.fanout",
    "groupbuy": "loadtests.groupbuy",
    "media": "loadtests.media",
    "sensors": "loadtests.sensors",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        names = ", ".join(sorted(BENCHMARKS))
        print(f"usage: python -m loadtests <name> [--help]; names: {names}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[sys.argv[1]])
    code: int = module.main(sys.argv[2:])
    return code


if __name__ == "__main__":
    raise SystemExit(main())
