"""The ``livecore`` command line: its commands, each option with its environment variable.

Each option of ``serve`` (:mod:`signalling.cli.serve_options`) can also be set
as ``LIVECORE_<OPTION>``; a flag given on the command line wins over the
environment. ``token``, ``valkey`` and ``trace export`` are here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livecore import __version__, tokens
from signalling.cli.environment import env
from signalling.cli.serve_options import add_data_dir, add_serve_options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livecore",
        description="Real-time server for community group-buying live streams.",
    )
    parser.add_argument("--version", action="version", version=f"livecore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run a node",
        description="Run a livecore node. Without --redis it starts a private Valkey "
        "(embedded) in --data-dir and stops it on exit. Every option can also be set "
        "in the environment as LIVECORE_<OPTION>.",
    )
    add_serve_options(serve)
    _add_token(
        sub.add_parser(
            "token",
            help="mint a signed token",
            description="Mint a signed role token with the node's signing key: $LIVECORE_SECRET "
            "or <data-dir>/secret (created on first use, as `serve` does), or the key file of "
            "<data-dir>/keys marked sign; --key FILE mints with that key file (a shop key: "
            "viewer, officer and koc tokens for its rooms only).",
        )
    )
    _add_valkey(
        sub.add_parser(
            "valkey",
            help="run a private Valkey for several nodes on this machine",
            description="Run the bundled Valkey in the foreground, listening on "
            "127.0.0.1:PORT and a unix socket in --data-dir, until SIGTERM/SIGINT. Start "
            "nodes with --redis redis://127.0.0.1:PORT.",
        )
    )
    trace = sub.add_parser(
        "trace",
        help="audience traces for load tests",
        description="Audience traces (docs/loadtests.md) for `python -m loadtests replay`.",
    )
    trace_sub = trace.add_subparsers(dest="trace_command", required=True)
    _add_trace_export(
        trace_sub.add_parser(
            "export",
            help="write a past room's event history as a trace",
            description="Read ROOM's durable event history from Redis/Valkey and write it as "
            "an anonymised trace (comment lengths, not texts, unless --keep-text).",
        )
    )
    return parser


def _add_token(tok: argparse.ArgumentParser) -> None:
    tok.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in tokens.Role if r is not tokens.Role.NODE],
        help="what the bearer may do: host, koc, viewer, officer or admin",
    )
    tok.add_argument(
        "--room", required=True, help="room id the token is valid for ('*' = any room, admin only)"
    )
    tok.add_argument("--user", required=True, help="user id (1-64 of A-Z a-z 0-9 _ . : -)")
    tok.add_argument(
        "--community", default=None, help="fix the bearer's community (residential compound) id"
    )
    tok.add_argument(
        "--ttl",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="lifetime in seconds (default 3600; at most 86400, 30 days for device)",
    )
    tok.add_argument(
        "--key", default=None, metavar="FILE",
        help="sign with this key file (JSON: kid, scope, rooms, secret; docs/operations.md)",
    )  # fmt: skip
    add_data_dir(tok)


def _add_valkey(vk: argparse.ArgumentParser) -> None:
    vk.add_argument("--port", type=int, default=6390, help="TCP port on 127.0.0.1 (default 6390)")
    vk.add_argument(
        "--cluster",
        type=int,
        default=0,
        metavar="PRIMARIES",
        help="start a Valkey Cluster of PRIMARIES (at least 3) primaries on ports PORT, "
        "PORT+1, ... instead of one server; nodes take the printed redis+cluster:// URL",
    )
    vk.add_argument(
        "--replicas",
        type=int,
        default=0,
        choices=(0, 1, 2),
        help="with --cluster: replicas per primary (default 0), which take over when "
        "their primary dies",
    )
    add_data_dir(vk)


def _add_trace_export(export: argparse.ArgumentParser) -> None:
    export.add_argument("room", help="the room id")
    export.add_argument(
        "--redis",
        default=env("REDIS"),
        metavar="URL",
        help="the Redis/Valkey URL the nodes use (env LIVECORE_REDIS; "
        "default: the embedded Valkey of --data-dir, which must be running)",
    )
    add_data_dir(export)
    export.add_argument("--out", type=Path, required=True, help="trace file to write (.lctrace)")
    export.add_argument(
        "--keep-text", action="store_true", help="keep comment texts (default: lengths only)"
    )
