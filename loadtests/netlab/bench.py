"""``python -m loadtests netlab``: livecore on field networks, in a lab of namespaces.

Builds the network lab (docs/netlab.md; root, iproute2, nftables, coturn,
Chromium): the node behind a 1:1 NAT (``--announce-address``) with coturn
beside it in the lab's TURN namespace (``--turn-url turn:203.0.113.5:3478?
transport=tcp``, TURN REST credentials from a shared secret file), and four
phones: ``host`` and ``viewer`` behind home routers (masquerade),
``fw`` behind a firewall that drops every UDP datagram, ``crowd`` behind a
home router too. Then runs the scenarios (``--only`` picks some, by name or
by the issue's letter):

a ``home_nat``       Chromium behind home NAT plays a 720p30 1.5 Mbit/s H.264
                     clip (published over WHIP from the host's phone):
                     WHEP offer → first painted frame (median of
                     ``--samples``), then frames decoded per second;
b ``turn_tcp``       the same from the UDP-less phone: through coturn over TCP
                     (its selected pair must be a TCP relay);
c ``viewer_outage``  the room page on the viewer's phone, its link down
                     ``--outage`` s then up: seconds to the next decoded frame,
                     and the comments posted meanwhile (every 0.5 s) shown
                     exactly once (lost and doubled: 0 expected);
d ``host_outage``    the host page publishing the fake camera, the host's link
                     down ``--outage`` s then up: seconds to the viewer's next
                     decoded frame of the host;
e ``host_switch``    the host's phone switches networks (a new address): the
                     same measure;
f ``crowd``          ``--crowd-viewers`` lean WHEP viewers (loadtests.leanrtp)
                     from the crowd phone, one public address, opened within
                     ``--crowd-within`` s: every answer 201, every viewer's
                     frame rate over the window ≥ 28 fps.

Targets: first frame ≤ 2 s, ≥ 28 fps; video back within ``--recover-within``
s. Each scenario's figures go to stderr as it ends (``ttff_ms``,
``fps_min``, ``recovery_s``, ``ok`` and its details); the last stdout line is
the verdict (``loadtests.verdict``): ``{"ok": true, "scenarios": {...},
"load_avg": [...]}`` when every scenario met its targets, else ``{"ok":
false, "reason"}`` naming the ones that did not (their figures on stderr),
exit code 1. ``--short``: scenarios a, b, c (unless ``--only``), 3 samples,
a 3 s outage (under the node's 5 s consent expiry: the session is kept, so
the short form checks the path and the comments, not a page's recovery), a
3 s window: about 30 s. The machine's load average is in
the result: on a shared machine read the figures with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from loadtests.clip import parse_bitrate, parse_resolution
from loadtests.coturn import coturn_available, start_coturn
from loadtests.netlab import Lab, PhoneSpec, Router, plan, unavailable
from loadtests.netlab.chromium import CHROMIUM, browser_in
from loadtests.netlab.node import start_node
from loadtests.netlab.outages import host_outage, host_switch, viewer_outage
from loadtests.netlab.publisher import ClipSpec
from loadtests.netlab.scenarios import Bench, Options, Scenario, crowd, home_nat, turn_tcp
from loadtests.stats import HelpFormatter, log
from loadtests.verdict import Invalid, Outcome, finish

#: Scenario name → (letter of the issue, function), in the order they run.
SCENARIOS = {
    "home_nat": ("a", home_nat),
    "turn_tcp": ("b", turn_tcp),
    "viewer_outage": ("c", viewer_outage),
    "host_outage": ("d", host_outage),
    "host_switch": ("e", host_switch),
    "crowd": ("f", crowd),
}
SHORT = ("home_nat", "turn_tcp", "viewer_outage")
#: The phones whose browser each scenario uses.
BROWSERS = {"home_nat": {"viewer"}, "turn_tcp": {"fw"}, "viewer_outage": {"viewer"},
            "host_outage": {"host", "viewer"}, "host_switch": {"host", "viewer"}}  # fmt: skip
SCENARIO_TIMEOUT_S = 240.0


def phones() -> list[PhoneSpec]:
    return [PhoneSpec("host"), PhoneSpec("viewer"), PhoneSpec("fw", Router.NO_UDP),
            PhoneSpec("crowd")]  # fmt: skip


def selected(only: str | None, short: bool) -> list[str]:
    """The scenarios to run, in their order, from ``--only`` (names or letters)."""
    if not only:
        return list(SHORT if short else SCENARIOS)
    letters = {letter: name for name, (letter, _) in SCENARIOS.items()}
    wanted = set()
    for item in filter(None, (x.strip() for x in only.split(","))):
        name = letters.get(item, item)
        if name not in SCENARIOS:
            raise argparse.ArgumentTypeError(f"unknown scenario {item!r}")
        wanted.add(name)
    return [name for name in SCENARIOS if name in wanted]


async def run_all(options: Options, names: list[str], workdir: Path) -> Outcome:
    """Build the lab, start coturn and the node, run ``names``; tear everything down."""
    secret = secrets.token_hex(32)
    results: dict[str, Scenario] = {}
    async with Lab.open(workdir / "lab", phones(), turn=True) as lab:
        assert lab.turn is not None
        relay = await asyncio.to_thread(
            start_coturn, plan.TURN_PUBLIC, workdir=workdir / "coturn", netns=lab.turn.ns,
            allowed_peers=(plan.NODE_PUBLIC,),
        )  # fmt: skip
        try:
            args = ["--announce-address", f"{plan.NODE_PRIVATE}={plan.NODE_PUBLIC}",
                    "--turn-url", relay.urls["tcp"], "--turn-secret-file", str(relay.secret_file),
                    "--media-max-sessions", str(max(500, options.crowd_viewers + 50))]  # fmt: skip
            node = await start_node(lab, workdir / "node", secret=secret, args=args)
            bench = Bench(lab, node, secret.encode(), options)
            async with contextlib.AsyncExitStack() as stack:
                needed: set[str] = set()
                for name in names:
                    needed |= BROWSERS.get(name, set())
                for phone in sorted(needed):
                    bench.browsers[phone] = await stack.enter_async_context(
                        browser_in(lab, lab.phones[phone], node.url)
                    )
                for name in names:
                    results[name] = await one(bench, name)
        finally:
            await asyncio.to_thread(relay.stop)
    figures = {name: r.figures() for name, r in results.items()}
    problems = [f"{name}: {'; '.join(r.problems)}" for name, r in results.items() if not r.ok]
    return {"scenarios": figures, "load_avg": [round(x, 1) for x in os.getloadavg()]}, problems


async def one(bench: Bench, name: str) -> Scenario:
    """One scenario, bounded in time; a crash is its failure (the run goes on)."""
    letter, scenario = SCENARIOS[name]
    started = time.monotonic()
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            result = await scenario(bench)
    except Exception as exc:
        result = Scenario(name, problems=[f"crashed: {type(exc).__name__}: {str(exc)[:300]}"])
    log(f"netlab: ({letter}) {name} in {time.monotonic() - started:.0f} s: "
        f"{json.dumps(result.figures(), default=str)}")  # fmt: skip
    for problem in result.problems:
        log(f"netlab: ({letter}) {name}: {problem}")
    return result


def precheck(names: list[str]) -> str | None:
    """Why this machine cannot run the benchmark, or None."""
    why = unavailable()
    if why is not None:
        return why
    if not coturn_available():
        return "coturn (turnserver) is needed: apt-get install coturn (make system)"
    if set(names) - {"crowd"} and not os.access(CHROMIUM, os.X_OK):
        return f"Chromium is needed at {CHROMIUM} (apt-get install chromium, make system)"
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests netlab", description=__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument("--only", help="scenarios to run: names or letters, comma-separated")
    parser.add_argument(
        "--short", action="store_true",
        help="a, b, c unless --only; 3 samples, a 3 s outage, a 3 s window",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the JSON result (always last)")
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="first frames timed in a and b (None: 5, with --short 3)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help="seconds fps is measured (None: 5, with --short 3)",
    )
    parser.add_argument(
        "--outage",
        type=float,
        default=None,
        help="seconds a link is down in c and d (None: 15, with --short 3)",
    )
    parser.add_argument("--recover-within", type=float, default=30.0,
                        help="seconds after a link is back within which video must be")  # fmt: skip
    parser.add_argument(
        "--resolution",
        type=parse_resolution,
        default="1280x720",
        help="the clip published in a, b and c",
    )
    parser.add_argument("--bitrate", type=parse_bitrate, default="1.5M", help="its bitrate")
    parser.add_argument("--crowd-viewers", type=int, default=1000, help="lean viewers in f")
    parser.add_argument("--crowd-within", type=float, default=10.0,
                        help="seconds in which the crowd's offers are POSTed")  # fmt: skip
    parser.add_argument("--crowd-processes", type=int, default=2, help="load processes")
    parser.add_argument(
        "--crowd-resolution",
        type=parse_resolution,
        default="640x360",
        help="the clip the crowd plays",
    )
    parser.add_argument("--crowd-bitrate", type=parse_bitrate, default="500k", help="its bitrate")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    try:
        names = selected(args.only, args.short)
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    if not 1 <= args.crowd_viewers <= 2000 or not 1 <= args.crowd_processes <= 8:
        parser.error("--crowd-viewers must be 1..2000 and --crowd-processes 1..8")
    short = args.short
    options = Options(
        samples=args.samples or (3 if short else 5),
        window_s=args.window or (3.0 if short else 5.0),
        outage_s=args.outage or (3.0 if short else 15.0),
        recover_within_s=args.recover_within,
        clip=ClipSpec(width=args.resolution[0], height=args.resolution[1], bitrate=args.bitrate),
        crowd_viewers=args.crowd_viewers,
        crowd_within_s=args.crowd_within,
        crowd_processes=args.crowd_processes,
        crowd_clip=ClipSpec(
            width=args.crowd_resolution[0],
            height=args.crowd_resolution[1],
            bitrate=args.crowd_bitrate,
        ),
    )
    why = precheck(names)
    if why is not None:
        return finish("netlab", None, [why])
    workdir = Path(tempfile.mkdtemp(prefix="netlab-"))
    log(f"netlab: {', '.join(names)}; work directory {workdir}")
    try:
        result, problems = asyncio.run(run_all(options, names, workdir))
    except Invalid as exc:
        return finish("netlab", None, [str(exc)])
    except Exception as exc:
        return finish("netlab", None, [f"the run crashed: {type(exc).__name__}: {exc!s:.300}"])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return finish("netlab", result, problems)
