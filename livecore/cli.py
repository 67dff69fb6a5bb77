"""The ``livecore`` command: ``serve``, ``token`` and ``valkey``.

This module is the composition root: it alone reaches up into
``signalling`` (lazily, for ``serve``), so the domain layer stays free of I/O.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from livecore import __version__, tokens
from livecore.config import (
    DEFAULT_DATA_DIR,
    DEFAULT_HOST,
    DEFAULT_PORT,
    FORWARDERS,
    SECRET_ENV,
    SecretError,
    Settings,
    default_node_id,
    load_blocked_words,
    load_secret,
    parse_port_range,
)
from livecore.store.embedded import EmbeddedValkey, EmbeddedValkeyError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"LIVECORE_{name}", default)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR", DEFAULT_DATA_DIR) or DEFAULT_DATA_DIR),
        help="directory for the token secret and the embedded Valkey's data "
        f"(env LIVECORE_DATA_DIR; default {DEFAULT_DATA_DIR})",
    )


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
    serve.add_argument(
        "--host",
        default=_env("HOST", DEFAULT_HOST),
        help=f"address to listen on (env LIVECORE_HOST; default {DEFAULT_HOST})",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(_env("PORT", str(DEFAULT_PORT)) or 0),
        help=f"TCP port to listen on (env LIVECORE_PORT; default {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--redis",
        default=_env("REDIS"),
        metavar="URL",
        help="Redis/Valkey URL shared by all nodes, e.g. redis://127.0.0.1:6379/0 "
        "or unix:///run/valkey.sock (env LIVECORE_REDIS; default: start an "
        "embedded Valkey in --data-dir)",
    )
    _add_data_dir(serve)
    serve.add_argument(
        "--node-id",
        default=_env("NODE_ID"),
        help="name of this node in logs, metrics and Valkey "
        "(env LIVECORE_NODE_ID; default <hostname>-<pid>)",
    )
    serve.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL"),
        metavar="URL",
        help="base URL people use to reach this node, for printed links and "
        "Location headers (env LIVECORE_PUBLIC_URL; default http://HOST:PORT)",
    )
    serve.add_argument(
        "--log-level",
        default=_env("LOG_LEVEL", "info"),
        choices=LOG_LEVELS,
        help="log verbosity (env LIVECORE_LOG_LEVEL; default info)",
    )
    serve.add_argument("--demo", action="store_true",
                       default=_env("DEMO", "") in ("1", "true", "yes"),
                       help="create the demo room and print host/viewer links with tokens "
                       "(env LIVECORE_DEMO=1; make run sets it)")  # fmt: skip
    room = serve.add_argument_group("room channel")
    room.add_argument(
        "--tick-ms",
        type=int,
        default=int(_env("TICK_MS", "50") or 50),
        help="broadcast tick: events are batched and sent at most this often "
        "(env LIVECORE_TICK_MS; default 50)",
    )
    room.add_argument(
        "--ws-send-buffer",
        type=int,
        default=int(_env("WS_SEND_BUFFER", str(512 * 1024)) or 0),
        metavar="BYTES",
        help="bytes queued for one websocket before it is closed as a slow "
        "consumer, code 4008 (env LIVECORE_WS_SEND_BUFFER; default 524288)",
    )
    room.add_argument(
        "--ws-message-rate",
        type=float,
        default=float(_env("WS_MESSAGE_RATE", "20") or 20),
        help="messages per second one connection may send, bursts of twice "
        "that (env LIVECORE_WS_MESSAGE_RATE; default 20)",
    )
    shop = serve.add_argument_group("group buys")
    shop.add_argument(
        "--communities",
        type=Path,
        default=_env("COMMUNITIES"),
        metavar="FILE",
        help="communities (小区) to load at start, JSON or CSV; without it an empty registry "
        "gets the bundled sample (env LIVECORE_COMMUNITIES)",
    )
    shop.add_argument(
        "--orders-webhook",
        default=_env("ORDERS_WEBHOOK"),
        metavar="URL",
        help="POST every join/leave/formed/failed order here, signed with HMAC-SHA256, "
        "at least once (env LIVECORE_ORDERS_WEBHOOK)",
    )
    shop.add_argument(
        "--orders-webhook-secret",
        default=_env("ORDERS_WEBHOOK_SECRET"),
        metavar="SECRET",
        help="key of the webhook's X-Livecore-Signature (env LIVECORE_ORDERS_WEBHOOK_SECRET; "
        "required with --orders-webhook)",
    )
    media = serve.add_argument_group("media")
    media.add_argument(
        "--ice-address",
        action="append",
        default=None,
        metavar="ADDR",
        help="local address ICE offers to peers, repeatable; 'all' for every interface "
        "(env LIVECORE_ICE_ADDRESSES, comma-separated; default 127.0.0.1: loopback only)",
    )
    media.add_argument(
        "--media-max-sessions",
        type=int,
        default=int(_env("MEDIA_MAX_SESSIONS", "500") or 500),
        help="WHIP/WHEP sessions this node holds before answering 503 "
        "(env LIVECORE_MEDIA_MAX_SESSIONS; default 500)",
    )
    media.add_argument(
        "--udp-ports",
        default=_env("UDP_PORTS"),
        metavar="LO-HI",
        help="bind media UDP sockets in this port range, e.g. 40000-40999 "
        "(env LIVECORE_UDP_PORTS; default: the OS's ephemeral ports)",
    )
    media.add_argument(
        "--udp-mux",
        type=int,
        default=_env("UDP_MUX"),
        metavar="PORT",
        help="one UDP port per ICE address for every media session "
        "(env LIVECORE_UDP_MUX; 0 = any free port; wins over --udp-ports)",
    )
    media.add_argument("--forwarder", choices=FORWARDERS, default=_env("FORWARDER") or "lean",
                       help="how viewers are served: lean (default) or aiortc's own senders "
                       "(env LIVECORE_FORWARDER)")  # fmt: skip
    media.add_argument(
        "--costream-max",
        type=int,
        default=int(_env("COSTREAM_MAX", "2") or 2),
        help="KOCs on air with the host at once (env LIVECORE_COSTREAM_MAX; default 2)",
    )
    room.add_argument(
        "--hello-timeout",
        type=float,
        default=float(_env("HELLO_TIMEOUT", "10") or 10),
        metavar="SECONDS",
        help="time a new websocket has to send hello, else close 4002 "
        "(env LIVECORE_HELLO_TIMEOUT; default 10)",
    )
    room.add_argument(
        "--comment-max-chars",
        type=int,
        default=int(_env("COMMENT_MAX_CHARS", "200") or 200),
        help="longest comment (env LIVECORE_COMMENT_MAX_CHARS; default 200)",
    )
    room.add_argument(
        "--comment-rate",
        type=float,
        default=float(_env("COMMENT_RATE", "1") or 1),
        help="comments per second per user, hosts exempt (env LIVECORE_COMMENT_RATE; default 1)",
    )
    room.add_argument(
        "--comment-burst",
        type=int,
        default=int(_env("COMMENT_BURST", "5") or 5),
        help="comments a user may send at once (env LIVECORE_COMMENT_BURST; default 5)",
    )
    room.add_argument("--blocked-words", type=Path, default=_env("BLOCKED_WORDS"), metavar="FILE",
                      help="UTF-8 file, one blocked word per line; comments containing one are "
                      "refused (env LIVECORE_BLOCKED_WORDS)")  # fmt: skip

    tok = sub.add_parser(
        "token",
        help="mint a signed token",
        description="Mint a signed role token. The secret comes from $LIVECORE_SECRET or "
        "<data-dir>/secret (created on first use, as `serve` does).",
    )
    tok.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in tokens.Role],
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
        help=f"lifetime in seconds (default 3600, at most {tokens.MAX_TTL_S})",
    )
    _add_data_dir(tok)  # fmt: skip

    vk = sub.add_parser(
        "valkey",
        help="run a private Valkey for several nodes on this machine",
        description="Run the bundled Valkey in the foreground, listening on 127.0.0.1:PORT "
        "and a unix socket in --data-dir, until SIGTERM/SIGINT. Start nodes with "
        "--redis redis://127.0.0.1:PORT.",
    )
    vk.add_argument("--port", type=int, default=6390, help="TCP port on 127.0.0.1 (default 6390)")
    _add_data_dir(vk)
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = Settings(
        host=args.host,
        port=args.port,
        redis_url=args.redis or None,
        data_dir=args.data_dir,
        node_id=args.node_id or default_node_id(),
        public_url=args.public_url,
        log_level=args.log_level,
        demo=args.demo,
        tick_ms=args.tick_ms,
        ws_send_buffer=args.ws_send_buffer,
        ws_message_rate=args.ws_message_rate,
        hello_timeout_s=args.hello_timeout,
        communities_file=Path(args.communities) if args.communities else None,
        orders_webhook=args.orders_webhook,
        orders_webhook_secret=args.orders_webhook_secret,
        ice_addresses=_ice_addresses(args.ice_address),
        media_max_sessions=args.media_max_sessions,
        costream_max=args.costream_max,
        udp_ports=parse_port_range(args.udp_ports) if args.udp_ports else None,
        forwarder=args.forwarder,
        udp_mux_port=None if args.udp_mux is None else int(args.udp_mux),
        comment_max_chars=args.comment_max_chars,
        comment_rate=args.comment_rate,
        comment_burst=args.comment_burst,
        blocked_words=load_blocked_words(Path(args.blocked_words) if args.blocked_words else None),
    )
    settings.check()
    secret = load_secret(settings.data_dir, create=True)
    from signalling.server import run  # composition root: the one upward import

    return run(settings, secret)


def _ice_addresses(flags: list[str] | None) -> tuple[str, ...] | None:
    """--ice-address values (or the env list); 'all' means every interface (None)."""
    values = flags or (_env("ICE_ADDRESSES") or "127.0.0.1").split(",")
    values = [v.strip() for v in values if v.strip()]
    return None if "all" in values else tuple(values)


def _token(args: argparse.Namespace) -> int:
    role = tokens.Role(args.role)
    if args.room == tokens.ANY_ROOM and role is not tokens.Role.ADMIN:
        raise ValueError("only admin tokens may be valid for any room ('*')")
    secret = load_secret(args.data_dir, create=True)
    print(
        tokens.mint(
            secret, role=role, room=args.room, user=args.user, ttl_s=args.ttl,
            community=args.community,
        )
    )  # fmt: skip
    return 0


def _valkey(args: argparse.Namespace) -> int:
    server = EmbeddedValkey(args.data_dir, tcp_port=args.port)
    server.start()
    print(f"valkey ready: redis://127.0.0.1:{args.port}  ({server.url})", flush=True)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stop and server.process is not None and server.process.poll() is None:
            time.sleep(0.2)
    finally:
        server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "token":
            return _token(args)
        return _valkey(args)
    except (EmbeddedValkeyError, SecretError, ValueError, OSError) as exc:
        print(f"livecore: error: {exc}", file=sys.stderr)
        return 2


__all__ = ["SECRET_ENV", "main"]
