"""Server settings: one frozen object built from the command line and env.

Every option has an environment variable (``LIVECORE_<NAME>``) so that
deployments can configure nodes without long command lines; a flag given on
the command line wins over the environment.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = ".livecore"
SECRET_FILE = "secret"
SECRET_ENV = "LIVECORE_SECRET"
MIN_SECRET_BYTES = 32
FORWARDERS = ("lean", "aiortc")


def parse_port_range(text: str) -> tuple[int, int]:
    """``"40000-40999"`` → ``(40000, 40999)``; ``ValueError`` with the reason otherwise."""
    lo_text, sep, hi_text = text.partition("-")
    try:
        lo, hi = int(lo_text), int(hi_text if sep else lo_text)
    except ValueError:
        raise ValueError(f"--udp-ports must be LO-HI (e.g. 40000-40999), got {text!r}") from None
    if not 1024 <= lo <= hi <= 65535:
        raise ValueError(f"--udp-ports must lie within 1024-65535 with LO <= HI, got {text!r}")
    return lo, hi


@dataclass(frozen=True, slots=True)
class Settings:
    """What a node needs to start; see docs/operations.md for each field."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Redis/Valkey URL; ``None`` starts the embedded Valkey in ``data_dir``.
    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    node_id: str = field(default_factory=lambda: default_node_id())
    #: Base URL people use to reach this node (printed, used in Location headers).
    public_url: str | None = None
    log_level: str = "info"
    #: Create the demo room at start (``make run``).
    demo: bool = False
    #: Room channel: broadcast tick, per-connection send buffer limit.
    tick_ms: int = 50
    ws_send_buffer: int = 512 * 1024
    #: Comments: longest text, per-user rate (per second) and burst, blocked words.
    comment_max_chars: int = 200
    comment_rate: float = 1.0
    comment_burst: int = 5
    blocked_words: tuple[str, ...] = ()
    #: Messages a connection may send per second (burst twice that).
    ws_message_rate: float = 20.0
    #: Seconds a new websocket has to send ``hello``.
    hello_timeout_s: float = 10.0
    #: Communities to load at start (JSON or CSV); None = the sample, into an empty registry.
    communities_file: Path | None = None
    #: Shop backend that receives orders (POST, HMAC-signed), and its signing secret.
    orders_webhook: str | None = None
    orders_webhook_secret: str | None = None
    #: Addresses ICE gathers host candidates on (None: every interface).
    ice_addresses: tuple[str, ...] | None = ("127.0.0.1",)
    #: WHIP + WHEP sessions (and cascade pulls) one node holds at most.
    media_max_sessions: int = 500
    #: KOCs on air with the host at once.
    costream_max: int = 2
    #: Media UDP ports (inclusive) the node binds in; None: the OS's ephemeral ports.
    udp_ports: tuple[int, int] | None = None
    #: One shared UDP port per ICE address for every media session (0: any free port).
    udp_mux_port: int | None = None
    #: How WHEP viewers are served: "lean" (one send loop per track) or "aiortc".
    forwarder: str = "lean"

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        bounds = [
            ("--port", self.port, 0, 65535),
            ("--tick-ms", self.tick_ms, 5, 1000),
            ("--ws-send-buffer", self.ws_send_buffer, 16 * 1024, 64 * 1024 * 1024),
            ("--ws-message-rate", self.ws_message_rate, 0.1, 10_000),
            ("--comment-max-chars", self.comment_max_chars, 1, 500),
            ("--comment-rate", self.comment_rate, 0.01, 10_000),
            ("--comment-burst", self.comment_burst, 1, 100_000),
            ("--hello-timeout", self.hello_timeout_s, 0.1, 300),
            ("--media-max-sessions", self.media_max_sessions, 1, 100_000),
            ("--costream-max", self.costream_max, 0, 8),
        ]
        for name, value, lo, hi in bounds:
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
        if self.udp_mux_port is not None and not 0 <= self.udp_mux_port <= 65535:
            raise ValueError("--udp-mux must be a UDP port (0 = any free one)")
        if self.udp_mux_port is not None and self.ice_addresses is None:
            raise ValueError("--udp-mux needs explicit --ice-address values (not 'all')")
        if self.forwarder not in FORWARDERS:
            raise ValueError(f"--forwarder must be one of {', '.join(FORWARDERS)}")
        if self.orders_webhook and not self.orders_webhook.startswith(("http://", "https://")):
            raise ValueError("--orders-webhook must be an http(s) URL")
        if self.orders_webhook and not self.orders_webhook_secret:
            raise ValueError("--orders-webhook needs --orders-webhook-secret to sign deliveries")

    @property
    def base_url(self) -> str:
        """The URL printed for people; the bind address when no public URL is set."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"


def load_blocked_words(path: Path | None) -> tuple[str, ...]:
    """Words from a UTF-8 file, one per line (``#`` starts a comment)."""
    if path is None:
        return ()
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip()
        if word:
            words.append(word)
    return tuple(words)


def default_node_id() -> str:
    """``<hostname>-<pid>``: unique per process, readable in logs and metrics."""
    return f"{socket.gethostname()}-{os.getpid()}"


class SecretError(RuntimeError):
    """The token secret is missing or too weak."""


def load_secret(data_dir: Path, *, create: bool) -> bytes:
    """Return the token-signing secret.

    Order: ``$LIVECORE_SECRET`` (at least 32 bytes), else ``<data_dir>/secret``;
    with ``create`` a random secret is written there (mode 0600) on first use.
    There is never a built-in secret.
    """
    env = os.environ.get(SECRET_ENV)
    if env:
        value = env.encode()
        if len(value) < MIN_SECRET_BYTES:
            raise SecretError(f"{SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes long")
        return value
    path = data_dir / SECRET_FILE
    if path.exists():
        value = path.read_bytes().strip()
        if len(value) < MIN_SECRET_BYTES:
            raise SecretError(f"{path} holds fewer than {MIN_SECRET_BYTES} bytes")
        return value
    if not create:
        raise SecretError(
            f"no token secret: set {SECRET_ENV} or start `livecore serve` once with "
            f"--data-dir {data_dir} to generate {path}"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value + b"\n")
    return value
