"""The options of ``livecore serve``, grouped as ``--help`` shows them (media and
recording in :mod:`signalling.cli.media_options`).

Every default is read from :class:`livecore.config.Settings` (one source):
an option's default is ``$LIVECORE_<OPTION>`` when set (a string, which
argparse converts with the option's ``type`` like a command-line value), else
the Settings field, converted to the option's unit where the two differ
(``--media-budget`` in MiB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from livecore.config import Settings
from signalling.cli.environment import env, flag
from signalling.cli.media_options import add_media_options

#: The one source of defaults.
DEFAULTS = Settings()
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=env("DATA_DIR") or DEFAULTS.data_dir,
        help="directory for the token secret and the embedded Valkey's data "
        f"(env LIVECORE_DATA_DIR; default {DEFAULTS.data_dir})",
    )


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    """Every option of ``serve``: the node, the room channel, group buys, media, recording."""
    _add_node(serve)
    _add_room_channel(serve.add_argument_group("room channel"))
    _add_group_buys(serve.add_argument_group("group buys"))
    add_media_options(serve)


def _add_node(serve: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    serve.add_argument(
        "--host",
        default=env("HOST") or d.host,
        help=f"address to listen on (env LIVECORE_HOST; default {d.host})",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=env("PORT") or d.port,
        help=f"TCP port to listen on (env LIVECORE_PORT; default {d.port})",
    )
    serve.add_argument(
        "--redis",
        default=env("REDIS"),
        metavar="URL",
        help="Redis/Valkey URL shared by all nodes, e.g. redis://127.0.0.1:6379/0 "
        "or unix:///run/valkey.sock (env LIVECORE_REDIS; default: start an "
        "embedded Valkey in --data-dir)",
    )
    add_data_dir(serve)
    serve.add_argument(
        "--workers",
        default=env("WORKERS") or "1",
        metavar="N|auto",
        help="node processes on this machine sharing --port (SO_REUSEPORT), each with its "
        "own media; 'auto' = one per core (env LIVECORE_WORKERS; default 1). Each worker "
        "takes its slice of --udp-ports, --udp-mux PORT+i and --metrics-listen PORT+i",
    )
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
        "--node-url",
        default=env("NODE_URL"),
        metavar="URL",
        help="base URL the other nodes reach this node at, on the private network "
        "(media files, cascade pulls; registered in Valkey; env LIVECORE_NODE_URL; "
        "default http://HOST:PORT, 127.0.0.1 for a wildcard HOST)",
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
        "--metrics-listen",
        default=env("METRICS_LISTEN"),
        metavar="HOST:PORT",
        help="also serve /metrics, with no token, on this address only (a private one a "
        "scraper reaches; env LIVECORE_METRICS_LISTEN). On the main port /metrics takes "
        "an admin token except from this machine (loopback, not proxied)",
    )
    serve.add_argument(
        "--log-level",
        default=env("LOG_LEVEL") or d.log_level,
        choices=LOG_LEVELS,
        help=f"log verbosity (env LIVECORE_LOG_LEVEL; default {d.log_level})",
    )
    serve.add_argument(
        "--log-debug",
        action="append",
        default=None,
        metavar="LOGGER",
        help="also log this logger (and those under it) at debug, repeatable, e.g. "
        "media.layerforward: each viewer's layer choice and why (env LIVECORE_LOG_DEBUG, "
        "comma-separated; default none)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        default=flag("DEMO", d.demo),
        help="create the demo room and print host/viewer links with 12 h tokens signed "
        "with the node's signing key (env LIVECORE_DEMO=1; make run sets it)",
    )
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
    serve.add_argument(
        "--room-idle",
        type=float,
        default=env("ROOM_IDLE") or d.room_idle_s,
        metavar="SECONDS",
        help="how long a room without connections stays subscribed on a node, with its "
        f"local state (env LIVECORE_ROOM_IDLE; default {d.room_idle_s:g})",
    )
    serve.add_argument(
        "--ws-max-per-user",
        type=int,
        default=env("WS_MAX_PER_USER") or d.ws_max_per_user,
        help="websockets one user id may hold on this node, 0 = no cap "
        f"(env LIVECORE_WS_MAX_PER_USER; default {d.ws_max_per_user})",
    )
    serve.add_argument(
        "--ws-max-per-ip",
        type=int,
        default=env("WS_MAX_PER_IP") or d.ws_max_per_ip,
        help="websockets one client address may hold on this node, 0 = no cap "
        f"(env LIVECORE_WS_MAX_PER_IP; default {d.ws_max_per_ip})",
    )
    serve.add_argument(
        "--address-rate",
        type=float,
        default=env("ADDRESS_RATE") or d.address_rate,
        metavar="PER_S",
        help="WHIP/WHEP POSTs, HTTP writes and guest mints one client address may make per "
        "second, each, besides each caller's own limit; sized for carrier-grade NAT "
        f"(env LIVECORE_ADDRESS_RATE; default {d.address_rate:g})",
    )
    serve.add_argument(
        "--address-burst",
        type=int,
        default=env("ADDRESS_BURST") or d.address_burst,
        metavar="N",
        help=f"the burst of --address-rate (env LIVECORE_ADDRESS_BURST; default {d.address_burst})",
    )
    serve.add_argument(
        "--ws-ping-interval",
        type=float,
        default=env("WS_PING_INTERVAL") or d.ws_ping_interval_s,
        metavar="SECONDS",
        help="a websocket ping this often "
        f"(env LIVECORE_WS_PING_INTERVAL; default {d.ws_ping_interval_s:g})",
    )
    serve.add_argument(
        "--ws-idle-timeout",
        type=float,
        default=env("WS_IDLE_TIMEOUT") or d.ws_idle_timeout_s,
        metavar="SECONDS",
        help="close a websocket silent this long, no frame and no pong: a half-open "
        f"connection (env LIVECORE_WS_IDLE_TIMEOUT; default {d.ws_idle_timeout_s:g})",
    )
    serve.add_argument(
        "--ws-drain-timeout",
        type=float,
        default=env("WS_DRAIN_TIMEOUT") or d.ws_drain_timeout_s,
        metavar="SECONDS",
        help="close (4008) a websocket whose send buffer does not drain within this "
        f"(env LIVECORE_WS_DRAIN_TIMEOUT; default {d.ws_drain_timeout_s:g})",
    )
    serve.add_argument(
        "--ws-socket-send-buffer",
        type=int,
        default=env("WS_SOCKET_SEND_BUFFER") or d.ws_socket_send_buffer,
        metavar="BYTES",
        help="kernel send buffer per websocket, 0 = the kernel's default "
        f"(env LIVECORE_WS_SOCKET_SEND_BUFFER; default {d.ws_socket_send_buffer})",
    )


def _add_room_channel(room: argparse._ArgumentGroup) -> None:
    d = DEFAULTS
    room.add_argument(
        "--tick-ms",
        type=int,
        default=env("TICK_MS") or d.tick_ms,
        help="broadcast tick: events are batched and sent at most this often "
        f"(env LIVECORE_TICK_MS; default {d.tick_ms})",
    )
    room.add_argument(
        "--ws-send-buffer",
        type=int,
        default=env("WS_SEND_BUFFER") or d.ws_send_buffer,
        metavar="BYTES",
        help="bytes queued for one websocket before it is closed as a slow "
        f"consumer, code 4008 (env LIVECORE_WS_SEND_BUFFER; default {d.ws_send_buffer})",
    )
    room.add_argument(
        "--ws-message-rate",
        type=float,
        default=env("WS_MESSAGE_RATE") or d.ws_message_rate,
        help="messages per second one connection, and one user over all their "
        "connections, may send, bursts of twice that; expensive types (votes, joins, "
        f"host actions) half of it (env LIVECORE_WS_MESSAGE_RATE; default {d.ws_message_rate:g})",
    )
    room.add_argument(
        "--hello-timeout",
        type=float,
        default=env("HELLO_TIMEOUT") or d.hello_timeout_s,
        metavar="SECONDS",
        help="time a new websocket has to send hello, else close 4002 "
        f"(env LIVECORE_HELLO_TIMEOUT; default {d.hello_timeout_s:g})",
    )
    room.add_argument(
        "--comment-max-chars",
        type=int,
        default=env("COMMENT_MAX_CHARS") or d.comment_max_chars,
        help=f"longest comment (env LIVECORE_COMMENT_MAX_CHARS; default {d.comment_max_chars})",
    )
    room.add_argument(
        "--comment-rate",
        type=float,
        default=env("COMMENT_RATE") or d.comment_rate,
        help="comments per second per user, hosts exempt "
        f"(env LIVECORE_COMMENT_RATE; default {d.comment_rate:g})",
    )
    room.add_argument(
        "--comment-burst",
        type=int,
        default=env("COMMENT_BURST") or d.comment_burst,
        help="comments a user may send at once "
        f"(env LIVECORE_COMMENT_BURST; default {d.comment_burst})",
    )
    room.add_argument(
        "--blocked-words",
        type=Path,
        default=env("BLOCKED_WORDS"),
        metavar="FILE",
        help="UTF-8 file, one blocked word per line; comments containing one are "
        "refused (env LIVECORE_BLOCKED_WORDS)",
    )


def _add_group_buys(shop: argparse._ArgumentGroup) -> None:
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
        default=flag("ORDERS_WEBHOOK_ALLOW_HTTP", DEFAULTS.orders_webhook_allow_http),
        help="accept a plain http:// orders webhook "
        "(env LIVECORE_ORDERS_WEBHOOK_ALLOW_HTTP=1; default: https:// only)",
    )
