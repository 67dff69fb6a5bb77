"""``python -m loadtests <scenario> [options]``: load scenarios for livecore.

Every scenario's last line of stdout is one JSON object with ``"ok"`` (see
``loadtests.verdict``): its figures when the run was valid, else only the
reason, with exit code 1.

``python -m loadtests --help`` lists them; ``python -m loadtests <scenario>
--help`` explains one, with its defaults.
"""

from __future__ import annotations

import importlib
import sys

#: scenario → (module, what it measures), in the order shown.
SCENARIOS = {
    "replay": ("loadtests.replay",
               "play a recorded or synthetic audience at K× size and X× speed; HTML report, SLOs"),
    "fanout": ("loadtests.fanout",
               "comment fan-out to N viewers of one room or many: delivery latency, CPU, memory"),
    "groupbuy": ("loadtests.groupbuy",
                 "group-buy joins through K nodes: join rate, ack latency, exact counts"),
    "flashsale": ("loadtests.flashsale",
                  "buyers racing for a flash sale's stock through K nodes: sold exactly, ack p99"),
    "media": ("loadtests.media",
              "video forwarding: one WHIP publisher, N WHEP viewers, CPU per viewer, latency"),
    "sensors": ("loadtests.sensors",
                "sensor readings into traceability batches: readings/s, ingest p99, bytes"),
    "highlights": ("loadtests.highlights",
                   "labelled audience + live stream: highlight precision/recall, clip delay, "
                   "cut speed, recorder CPU"),
    "recording": ("loadtests.recording",
                  "recorder CPU per stream, clip cut and replay build speed (no node)"),
    "netlab": ("loadtests.netlab.bench",
               "field networks in a namespace lab (root): NAT, TURN over TCP, outages, "
               "1,000 viewers from one address"),
    "adaptive": ("loadtests.netlab.adaptive",
                 "simulcast in the namespace lab (root): viewers capped at 0.4/1.2/6 Mbit/s, "
                 "their layers, fps and freezes, beside one layer"),
    "faults": ("loadtests.faults", "Valkey/node SIGKILL, floods, churn: nothing acked lost"),
    "synth": ("loadtests.synth",
              "write a synthetic live-commerce trace (seeded) with labelled highlight moments"),
    "export": ("loadtests.export",
               "write a trace of a past room from its event history in Redis/Valkey"),
}  # fmt: skip


def usage() -> str:
    width = max(map(len, SCENARIOS))
    lines = ["usage: python -m loadtests <scenario> [--help] [options]", "", "scenarios:"]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in SCENARIOS.items()]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(usage())
        return 0 if len(sys.argv) >= 2 else 2
    if sys.argv[1] not in SCENARIOS:
        print(f"unknown scenario {sys.argv[1]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SCENARIOS[sys.argv[1]][0])
    code: int = module.main(sys.argv[2:])
    return code


if __name__ == "__main__":
    raise SystemExit(main())
