"""The ``livecore`` command line: every option, with its environment variable.

Each option of ``serve`` can also be set as ``LIVECORE_<OPTION>``; a flag given
on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from livecore import __version__, tokens
from livecore.config import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, FORWARDERS

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def env(name: str, default: str | None = None) -> str | None:
    """``$LIVECORE_<name>``, or ``default``."""
    return os.environ.get(f"LIVECORE_{name}", default)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env("DATA_DIR", DEFAULT_DATA_DIR) or DEFAULT_DATA_DIR),
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
        default=env("HOST", DEFAULT_HOST),
        help=f"address to listen on (env LIVECORE_HOST; default {DEFAULT_HOST})",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(env("PORT", str(DEFAULT_PORT)) or 0),
        help=f"TCP port to listen on (env LIVECORE_PORT; default {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--redis",
        default=env("REDIS"),
        metavar="URL",
        help="Redis/Valkey URL shared by all nodes, e.g. redis://127.0.0.1:6379/0 "
        "or unix:///run/valkey.sock (env LIVECORE_REDIS; default: start an "
        "embedded Valkey in --data-dir)",
    )
    _add_data_dir(serve)
    serve.add_argument(
        "--node-id",
        default=env("NODE_ID"),
        help="name of this node in logs, metrics and Valkey "
        "(env LIVECORE_NODE_ID; default <hostname>-<pid>)",
    )
    serve.add_argument(
        "--public-url",
        default=env("PUBLIC_URL"),
        metavar="URL",
        help="base URL people use to reach this node, for printed links and "
        "Location headers (env LIVECORE_PUBLIC_URL; default http://HOST:PORT)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=None,
        metavar="ADDR",
        help="a reverse proxy whose X-Forwarded-For is believed, repeatable "
        "(env LIVECORE_TRUSTED_PROXIES, comma-separated; default none: the peer "
        "address is the client)",
    )
    serve.add_argument(
        "--log-level",
        default=env("LOG_LEVEL", "info"),
        choices=LOG_LEVELS,
        help="log verbosity (env LIVECORE_LOG_LEVEL; default info)",
    )
    serve.add_argument("--demo", action="store_true",
                       default=env("DEMO", "") in ("1", "true", "yes"),
                       help="create the demo room and print host/viewer links with tokens "
                       "(env LIVECORE_DEMO=1; make run sets it)")  # fmt: skip
    serve.add_argument(
        "--tls-cert",
        default=env("TLS_CERT"),
        metavar="PEM",
        help="serve HTTPS/WSS with this certificate chain (with --tls-key); phones open "
        "the camera only on https:// pages (env LIVECORE_TLS_CERT)",
    )
    serve.add_argument(
        "--tls-key",
        default=env("TLS_KEY"),
        metavar="PEM",
        help="private key of --tls-cert (env LIVECORE_TLS_KEY)",
    )
    room = serve.add_argument_group("room channel")
    room.add_argument(
        "--tick-ms",
        type=int,
        default=int(env("TICK_MS", "50") or 50),
        help="broadcast tick: events are batched and sent at most this often "
        "(env LIVECORE_TICK_MS; default 50)",
    )
    room.add_argument(
        "--ws-send-buffer",
        type=int,
        default=int(env("WS_SEND_BUFFER", str(512 * 1024)) or 0),
        metavar="BYTES",
        help="bytes queued for one websocket before it is closed as a slow "
        "consumer, code 4008 (env LIVECORE_WS_SEND_BUFFER; default 524288)",
    )
    room.add_argument(
        "--ws-message-rate",
        type=float,
        default=float(env("WS_MESSAGE_RATE", "20") or 20),
        help="messages per second one connection, and one user over all their "
        "connections, may send, bursts of twice that; expensive types (votes, joins, "
        "host actions) half of it (env LIVECORE_WS_MESSAGE_RATE; default 20)",
    )
    serve.add_argument(
        "--room-idle",
        type=float,
        default=float(env("ROOM_IDLE", "30") or 30),
        metavar="SECONDS",
        help="how long a room without connections stays subscribed on a node, with its "
        "local state (env LIVECORE_ROOM_IDLE; default 30)",
    )
    serve.add_argument(
        "--ws-max-per-user",
        type=int,
        default=int(env("WS_MAX_PER_USER", "16") or 16),
        help="websockets one user id may hold on this node, 0 = no cap "
        "(env LIVECORE_WS_MAX_PER_USER; default 16)",
    )
    serve.add_argument(
        "--ws-max-per-ip",
        type=int,
        default=int(env("WS_MAX_PER_IP", "2000") or 0),
        help="websockets one client address may hold on this node, 0 = no cap "
        "(env LIVECORE_WS_MAX_PER_IP; default 2000)",
    )
    serve.add_argument(
        "--ws-ping-interval",
        type=float,
        default=float(env("WS_PING_INTERVAL", "20") or 20),
        metavar="SECONDS",
        help="a websocket ping this often (env LIVECORE_WS_PING_INTERVAL; default 20)",
    )
    serve.add_argument(
        "--ws-idle-timeout",
        type=float,
        default=float(env("WS_IDLE_TIMEOUT", "70") or 70),
        metavar="SECONDS",
        help="close a websocket silent this long, no frame and no pong: a half-open "
        "connection (env LIVECORE_WS_IDLE_TIMEOUT; default 70)",
    )
    serve.add_argument(
        "--ws-drain-timeout",
        type=float,
        default=float(env("WS_DRAIN_TIMEOUT", "10") or 10),
        metavar="SECONDS",
        help="close (4008) a websocket whose send buffer does not drain within this "
        "(env LIVECORE_WS_DRAIN_TIMEOUT; default 10)",
    )
    serve.add_argument(
        "--ws-socket-send-buffer",
        type=int,
        default=int(env("WS_SOCKET_SEND_BUFFER", str(64 * 1024)) or 0),
        metavar="BYTES",
        help="kernel send buffer per websocket, 0 = the kernel's default "
        "(env LIVECORE_WS_SOCKET_SEND_BUFFER; default 65536)",
    )
    shop = serve.add_argument_group("group buys")
    shop.add_argument(
        "--communities",
        type=Path,
        default=env("COMMUNITIES"),
        metavar="FILE",
        help="communities (小区) to load at start, JSON or CSV; without it an empty registry "
        "gets the bundled sample (env LIVECORE_COMMUNITIES)",
    )
    shop.add_argument(
        "--orders-webhook",
        default=env("ORDERS_WEBHOOK"),
        metavar="URL",
        help="POST every join/leave/formed/failed order here, signed with HMAC-SHA256, "
        "at least once (env LIVECORE_ORDERS_WEBHOOK)",
    )
    shop.add_argument(
        "--orders-webhook-secret",
        default=env("ORDERS_WEBHOOK_SECRET"),
        metavar="SECRET",
        help="key of the webhook's X-Livecore-Signature (env LIVECORE_ORDERS_WEBHOOK_SECRET; "
        "required with --orders-webhook; prefer the env or --orders-webhook-secret-file: a "
        "command line is visible in ps)",
    )
    shop.add_argument(
        "--orders-webhook-secret-file",
        type=Path,
        default=env("ORDERS_WEBHOOK_SECRET_FILE"),
        metavar="FILE",
        help="read the webhook's signing key from FILE (env LIVECORE_ORDERS_WEBHOOK_SECRET_FILE)",
    )
    shop.add_argument(
        "--orders-webhook-allow-http",
        action="store_true",
        default=env("ORDERS_WEBHOOK_ALLOW_HTTP") == "1",
        help="accept a plain http:// orders webhook (default: https:// only)",
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
        default=int(env("MEDIA_MAX_SESSIONS", "500") or 500),
        help="WHIP/WHEP sessions this node holds before answering 503 "
        "(env LIVECORE_MEDIA_MAX_SESSIONS; default 500)",
    )
    media.add_argument(
        "--media-connect-timeout",
        type=float,
        default=float(env("MEDIA_CONNECT_TIMEOUT", "10") or 10),
        metavar="SECONDS",
        help="time a WHIP/WHEP session has to connect (ICE and DTLS) before it is "
        "rolled back (env LIVECORE_MEDIA_CONNECT_TIMEOUT; default 10)",
    )
    media.add_argument(
        "--udp-ports",
        default=env("UDP_PORTS"),
        metavar="LO-HI",
        help="bind media UDP sockets in this port range, e.g. 40000-40999 "
        "(env LIVECORE_UDP_PORTS; default: the OS's ephemeral ports)",
    )
    media.add_argument(
        "--udp-mux",
        type=int,
        default=env("UDP_MUX"),
        metavar="PORT",
        help="one UDP port per ICE address for every media session "
        "(env LIVECORE_UDP_MUX; 0 = any free port; wins over --udp-ports)",
    )
    media.add_argument("--forwarder", choices=FORWARDERS, default=env("FORWARDER") or "lean",
                       help="how viewers are served: lean (default) or aiortc's own senders "
                       "(env LIVECORE_FORWARDER)")  # fmt: skip
    media.add_argument(
        "--costream-max",
        type=int,
        default=int(env("COSTREAM_MAX", "2") or 2),
        help="KOCs on air with the host at once (env LIVECORE_COSTREAM_MAX; default 2)",
    )
    _add_recording(serve)
    room.add_argument(
        "--hello-timeout",
        type=float,
        default=float(env("HELLO_TIMEOUT", "10") or 10),
        metavar="SECONDS",
        help="time a new websocket has to send hello, else close 4002 "
        "(env LIVECORE_HELLO_TIMEOUT; default 10)",
    )
    room.add_argument(
        "--comment-max-chars",
        type=int,
        default=int(env("COMMENT_MAX_CHARS", "200") or 200),
        help="longest comment (env LIVECORE_COMMENT_MAX_CHARS; default 200)",
    )
    room.add_argument(
        "--comment-rate",
        type=float,
        default=float(env("COMMENT_RATE", "1") or 1),
        help="comments per second per user, hosts exempt (env LIVECORE_COMMENT_RATE; default 1)",
    )
    room.add_argument(
        "--comment-burst",
        type=int,
        default=int(env("COMMENT_BURST", "5") or 5),
        help="comments a user may send at once (env LIVECORE_COMMENT_BURST; default 5)",
    )
    room.add_argument("--blocked-words", type=Path, default=env("BLOCKED_WORDS"), metavar="FILE",
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
    _add_data_dir(vk)
    trace = sub.add_parser(
        "trace",
        help="audience traces for load tests",
        description="Audience traces (docs/loadtests.md) for `python -m loadtests replay`.",
    )
    trace_sub = trace.add_subparsers(dest="trace_command", required=True)
    export = trace_sub.add_parser(
        "export",
        help="write a past room's event history as a trace",
        description="Read ROOM's durable event history from Redis/Valkey and write it as "
        "an anonymised trace (comment lengths, not texts, unless --keep-text).",
    )
    export.add_argument("room", help="the room id")
    export.add_argument(
        "--redis",
        default=env("REDIS"),
        metavar="URL",
        help="the Redis/Valkey URL the nodes use (env LIVECORE_REDIS; "
        "default: the embedded Valkey of --data-dir, which must be running)",
    )
    _add_data_dir(export)
    export.add_argument("--out", type=Path, required=True, help="trace file to write (.lctrace)")
    export.add_argument(
        "--keep-text", action="store_true", help="keep comment texts (default: lengths only)"
    )
    return parser


def _add_recording(serve: argparse.ArgumentParser) -> None:
    rec = serve.add_argument_group("recording (HLS, replay, clips)")
    rec.add_argument("--no-record", action="store_true",
                     default=env("NO_RECORD", "") in ("1", "true", "yes"),
                     help="do not record hosts' streams: no HLS, replay or clips "
                     "(env LIVECORE_NO_RECORD=1)")  # fmt: skip
    rec.add_argument("--media-dir", type=Path, default=env("MEDIA_DIR"), metavar="DIR",
                     help="where recordings, replays and clips are written "
                     "(env LIVECORE_MEDIA_DIR; default <data-dir>/media)")  # fmt: skip
    rec.add_argument("--record-segment", type=float,
                     default=float(env("RECORD_SEGMENT", "2") or 2), metavar="SECONDS",
                     help="segment length: a keyframe is asked for this often "
                     "(env LIVECORE_RECORD_SEGMENT; default 2)")  # fmt: skip
    rec.add_argument("--record-window", type=float,
                     default=float(env("RECORD_WINDOW", "600") or 600), metavar="SECONDS",
                     help="rolling window of segments kept for HLS and clips "
                     "(env LIVECORE_RECORD_WINDOW; default 600)")  # fmt: skip
    rec.add_argument("--media-budget", type=int,
                     default=int(env("MEDIA_BUDGET", "10240") or 10240), metavar="MB",
                     help="disk budget of the media directory; the oldest recordings are "
                     "pruned first (env LIVECORE_MEDIA_BUDGET; default 10240)")  # fmt: skip
    rec.add_argument("--end-grace", type=float, default=float(env("END_GRACE", "60") or 60),
                     metavar="SECONDS",
                     help="a room ends this long after its host's stream ended, unless the "
                     "host is back (env LIVECORE_END_GRACE; default 60)")  # fmt: skip
    rec.add_argument("--room-retention", type=int,
                     default=int(env("ROOM_RETENTION", str(7 * 24 * 3600)) or 604800),
                     metavar="SECONDS",
                     help="an ended room's keys are removed this long after it ended "
                     "(env LIVECORE_ROOM_RETENTION; default 7 days)")  # fmt: skip
    rec.add_argument("--record-trace", type=Path, default=env("RECORD_TRACE"), metavar="DIR",
                     help="record each room's traffic as anonymised audience traces for "
                     "`python -m loadtests replay` (env LIVECORE_RECORD_TRACE; "
                     "default off)")  # fmt: skip
    rec.add_argument("--record-text", action="store_true",
                     default=env("RECORD_TEXT", "") in ("1", "true", "yes"),
                     help="keep comment texts in recorded traces (default: lengths only; "
                     "env LIVECORE_RECORD_TEXT=1)")  # fmt: skip
    rec.add_argument("--highlight-time-scale", type=float, default=1.0, metavar="X",
                     help="benchmarks only: the highlight detector reads stream time × X, for "
                     "an audience trace replayed X times faster; clips are cut at the "
                     "window ÷ X (default 1)")  # fmt: skip
