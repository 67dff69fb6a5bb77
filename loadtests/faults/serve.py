"""``python -m loadtests.faults.serve NAME=VALUE ... -- serve ARGS``: a real
``livecore serve`` with Settings fields the command line does not set (yet).

The fault scenarios need short keep-alive and drain timers
(``ws_idle_timeout_s``, ``ws_ping_interval_s``, ``ws_drain_timeout_s``) to
finish in seconds; every other option goes through the ordinary command line.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Sequence
from typing import Any

from livecore import config
from livecore.cli import commands


def overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["ws_idle_timeout_s=2"]`` → ``{"ws_idle_timeout_s": 2.0}`` (numeric fields only)."""
    fields = {f.name for f in dataclasses.fields(config.Settings)}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"no Settings field {name!r}")
        out[name] = float(value)
    return out


def main(argv: Sequence[str]) -> int:
    split = list(argv).index("--")
    extra = overrides(argv[:split])
    # the CLI builds Settings from its flags; these fields are added to that call
    commands.Settings = functools.partial(config.Settings, **extra)  # type: ignore[attr-defined,assignment]
    return commands.main(argv[split + 1 :])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
