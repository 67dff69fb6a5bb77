"""Server settings: one frozen object, checked, free of I/O.

The command line and the environment (``LIVECORE_<NAME>``) fill it in
:mod:`signalling.cli`; the token secret and the blocked-words file are read
there too (:mod:`signalling.cli.environment`), so this module stays pure.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from livecore.turn import IceServers

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = ".livecore"
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


def parse_announce(text: str) -> tuple[str, str]:
    """``"198.51.100.10=203.0.113.10"`` → the (bound, announced) pair, both IP literals
    of one family in compressed form; ``ValueError`` with the reason otherwise."""
    bound_text, sep, public_text = text.strip().partition("=")
    try:
        if not sep:
            raise ValueError
        bound = ipaddress.ip_address(bound_text.strip().strip("[]"))
        public = ipaddress.ip_address(public_text.strip().strip("[]"))
    except ValueError:
        raise ValueError(
            f"--announce-address must be BOUND=ANNOUNCED, two IP addresses "
            f"(e.g. 10.0.0.5=203.0.113.10), got {text!r}"
        ) from None
    if bound.version != public.version:
        raise ValueError(f"--announce-address {text!r} maps an IPv{bound.version} address "
                         f"to an IPv{public.version} one")  # fmt: skip
    if public.is_unspecified or public.is_multicast:
        raise ValueError(f"--announce-address {text!r}: {public} cannot be announced")
    return bound.compressed, public.compressed


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_RE = re.compile(r"^([A-Za-z0-9_.-]+/)*$")
_REGION_RE = re.compile(r"^[a-z0-9-]{1,32}$")


@dataclass(frozen=True, slots=True)
class ObjectStoreSettings:
    """S3-compatible object storage for finished media (``--s3-*``; docs/operations.md).

    The secret key comes from the environment or a file, never a command line
    (:mod:`signalling.cli.environment`)."""

    endpoint: str
    """``http(s)://HOST[:PORT]`` of the S3 API (no path)."""
    bucket: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    prefix: str = "livecore/"
    """Every object key starts with this (``""`` or ``a/b/``, ending in ``/``)."""
    retry_s: float = 30.0
    """Seconds between sweeps that retry what could not be uploaded."""
    hls: bool = False
    """Also upload live HLS (init, segments, the room's playlist) as they are written."""

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        scheme, sep, rest = self.endpoint.partition("://")
        host = rest.rstrip("/")
        if scheme not in ("http", "https") or not sep or not host or "/" in host:
            raise ValueError(f"--s3-endpoint must be http(s)://HOST[:PORT], got {self.endpoint!r}")
        if not _BUCKET_RE.match(self.bucket) or ".." in self.bucket:
            raise ValueError(f"--s3-bucket {self.bucket!r} is not an S3 bucket name (3-63 of "
                             "a-z 0-9 . -)")  # fmt: skip
        if not _REGION_RE.match(self.region):
            raise ValueError(f"--s3-region {self.region!r}: 1-32 of a-z 0-9 -")
        if len(self.prefix) > 200 or not _PREFIX_RE.match(self.prefix) or "./" in self.prefix:
            raise ValueError(f"--s3-prefix {self.prefix!r}: empty, or path parts of "
                             "A-Z a-z 0-9 _ . - each ending in /")  # fmt: skip
        if not self.access_key or not self.secret_key:
            raise ValueError("--s3-endpoint needs an access key (--s3-access-key) and a secret "
                             "key (LIVECORE_S3_SECRET_KEY or --s3-secret-file)")  # fmt: skip
        if not 1 <= self.retry_s <= 3600:
            raise ValueError(f"--s3-retry must be between 1 and 3600, got {self.retry_s}")

    @property
    def secure(self) -> bool:
        return self.endpoint.startswith("https://")

    @property
    def host(self) -> str:
        """``HOST[:PORT]`` of the endpoint."""
        return self.endpoint.partition("://")[2].rstrip("/")


@dataclass(frozen=True, slots=True)
class Settings:
    """What a node needs to start; see docs/operations.md for each field."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: Redis/Valkey URL; ``None`` starts the embedded Valkey in ``data_dir``.
    redis_url: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    #: Name of the node in logs, metrics and Valkey (the CLI defaults it to
    #: ``<hostname>-<pid>``, see :func:`signalling.cli.environment.default_node_id`).
    node_id: str = "livecore"
    #: Base URL people use to reach this node (printed, used in Location headers).
    public_url: str | None = None
    #: Base URL other nodes reach this node at (media files, cascade pulls), registered
    #: in Valkey; None: the bind address (``http://HOST:PORT``), never ``--public-url``.
    node_url: str | None = None
    log_level: str = "info"
    #: Loggers logged at DEBUG whatever ``log_level`` (e.g. ``media.layerforward``:
    #: each viewer's layer choice, twice a second).
    log_debug: tuple[str, ...] = ()
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
    #: Websockets per user id and per client address on one node (0: no cap).
    ws_max_per_user: int = 16
    ws_max_per_ip: int = 2000
    #: HTTP requests one client address may make per second (bursts of ``address_burst``),
    #: for each of WHIP/WHEP POSTs, HTTP writes and guest mints, besides each caller's
    #: own limit. Sized for carrier-grade NAT (a residential compound, thousands of
    #: people, behind one address): it only stops floods.
    address_rate: float = 100.0
    address_burst: int = 2000
    #: Seconds a room without connections stays subscribed on a node.
    room_idle_s: float = 30.0
    #: Seconds a new websocket has to send ``hello``.
    hello_timeout_s: float = 10.0
    #: Keep-alive: a websocket ping every ``ws_ping_interval_s``; a joined websocket
    #: silent (no frame, no pong) for ``ws_idle_timeout_s`` is closed 1001 (a
    #: half-open TCP connection is reaped within idle + 1 s + the 3 s close handshake).
    ws_ping_interval_s: float = 20.0
    ws_idle_timeout_s: float = 70.0
    #: Seconds a websocket's send buffer may stay non-empty (the client not reading
    #: what the kernel would pass on) before it is closed 4008, whatever its size.
    ws_drain_timeout_s: float = 10.0
    #: SO_SNDBUF of each websocket (Linux doubles it; 0: the kernel's autotuning, up to
    #: ``net.ipv4.tcp_wmem``'s max, 4 MiB, which a stalled client fills unseen first).
    ws_socket_send_buffer: int = 64 * 1024
    #: Communities to load at start (JSON or CSV); None = the sample, into an empty registry.
    communities_file: Path | None = None
    #: Shop backend that receives orders (POST, HMAC-signed), and its signing secret.
    orders_webhook: str | None = None
    orders_webhook_secret: str | None = None
    #: Accept a plain ``http://`` orders webhook (signed, but readable on the way).
    orders_webhook_allow_http: bool = False
    #: Addresses ICE gathers host candidates on (None: every interface).
    ice_addresses: tuple[str, ...] | None = ("127.0.0.1",)
    #: (bound, announced) pairs: candidates on a bound address name the announced one
    #: instead (a public address in front of a private one, 1:1 NAT).
    announce_addresses: tuple[tuple[str, str], ...] = ()
    #: Reverse proxies whose ``X-Forwarded-For`` names the client (none: the peer is).
    trusted_proxies: tuple[str, ...] = ()
    #: A second listening address serving only ``/metrics``, with no token.
    metrics_listen: tuple[str, int] | None = None
    #: WHIP + WHEP sessions (and cascade pulls) one node holds at most.
    media_max_sessions: int = 500
    #: Seconds a WHIP/WHEP session has to complete ICE and DTLS before it is rolled back.
    media_connect_timeout_s: float = 10.0
    #: Seconds a local copy of another node's stream stays open after its last local
    #: viewer left (a viewer who reloads the page finds it still open).
    pull_idle_s: float = 20.0
    #: KOCs on air with the host at once.
    costream_max: int = 2
    #: Recording (HLS, replay, clips): on/off, media root (None: <data_dir>/media),
    #: segment (GOP) length, rolling clip window, the node's disk budget in bytes.
    record: bool = True
    media_dir: Path | None = None
    record_segment_s: float = 2.0
    record_window_s: float = 600.0
    media_budget_bytes: int = 10 * 1024**3
    #: S3-compatible object storage for clips, thumbnails and replays (None: local disk only).
    object_store: ObjectStoreSettings | None = None
    #: TLS certificate chain and private key (PEM); both set = serve HTTPS/WSS.
    #: Phones only open the camera (getUserMedia) on a secure origin.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Benchmarks only (1 in production): the highlight detector reads stream time × this,
    #: for an audience trace replayed this many times faster (signalling/services/highlights.py).
    highlight_time_scale: float = 1.0
    #: ``--record-trace DIR``: record the room channel's traffic as audience traces
    #: (anonymised; comment texts only with ``record_text``). None: off.
    record_trace: Path | None = None
    #: Seconds a room stays live after its host's stream ended (a phone reconnecting).
    end_grace_s: float = 60.0
    #: Seconds an ended room's keys are kept before they are removed.
    room_retention_s: int = 7 * 24 * 3600
    record_text: bool = False
    #: Media UDP ports (inclusive) the node binds in; None: the OS's ephemeral ports.
    udp_ports: tuple[int, int] | None = None
    #: One shared UDP port per ICE address for every media session (0: any free port).
    udp_mux_port: int | None = None
    #: How WHEP viewers are served: "lean" (one send loop per track) or "aiortc".
    forwarder: str = "lean"
    #: STUN/TURN servers handed to clients (WHIP/WHEP ``Link`` headers, the pages'
    #: ``/api/rooms/{room}/ice-servers``) with credentials minted per caller; the
    #: node's own peers never use them (see livecore/turn.py).
    ice_servers: IceServers = field(default_factory=IceServers)

    def check(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        bounds = [
            ("--port", self.port, 0, 65535),
            ("--tick-ms", self.tick_ms, 5, 1000),
            ("--ws-send-buffer", self.ws_send_buffer, 16 * 1024, 64 * 1024 * 1024),
            ("--ws-message-rate", self.ws_message_rate, 0.1, 10_000),
            ("--ws-max-per-user", self.ws_max_per_user, 0, 100_000),
            ("--ws-max-per-ip", self.ws_max_per_ip, 0, 1_000_000),
            ("--address-rate", self.address_rate, 0.1, 1_000_000),
            ("--address-burst", self.address_burst, 1, 10_000_000),
            ("--comment-max-chars", self.comment_max_chars, 1, 500),
            ("--comment-rate", self.comment_rate, 0.01, 10_000),
            ("--comment-burst", self.comment_burst, 1, 100_000),
            ("--hello-timeout", self.hello_timeout_s, 0.1, 300),
            ("ws_ping_interval_s", self.ws_ping_interval_s, 0.1, 300),
            ("ws_idle_timeout_s", self.ws_idle_timeout_s, 0.5, 3600),
            ("ws_drain_timeout_s", self.ws_drain_timeout_s, 0.5, 600),
            ("--room-idle", self.room_idle_s, 0.5, 3600),
            ("--media-max-sessions", self.media_max_sessions, 1, 100_000),
            ("--media-connect-timeout", self.media_connect_timeout_s, 0.1, 120),
            ("--pull-idle", self.pull_idle_s, 1, 3600),
            ("--costream-max", self.costream_max, 0, 8),
            ("--record-segment", self.record_segment_s, 1, 10),
            ("--record-window", self.record_window_s, 30, 24 * 3600),
            ("--media-budget", self.media_budget_bytes // 1024**2, 16, 100 * 1024**2),
            ("--highlight-time-scale", self.highlight_time_scale, 1, 20),
            ("--end-grace", self.end_grace_s, 0, 3600),
            ("--room-retention", self.room_retention_s, 60, 365 * 24 * 3600),
        ]
        for name, value, lo, hi in bounds:
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
        if self.ws_socket_send_buffer and not 4096 <= self.ws_socket_send_buffer <= 64 * 1024**2:
            raise ValueError("ws_socket_send_buffer must be 0 or between 4096 and 64 MiB")
        if self.ws_idle_timeout_s <= self.ws_ping_interval_s:
            raise ValueError("ws_idle_timeout_s must be longer than ws_ping_interval_s")
        if self.udp_mux_port is not None and not 0 <= self.udp_mux_port <= 65535:
            raise ValueError("--udp-mux must be a UDP port (0 = any free one)")
        if self.udp_mux_port is not None and self.ice_addresses is None:
            raise ValueError("--udp-mux needs explicit --ice-address values (not 'all')")
        self._check_announce()
        if self.forwarder not in FORWARDERS:
            raise ValueError(f"--forwarder must be one of {', '.join(FORWARDERS)}")
        if self.node_url is not None and not self.node_url.startswith(("http://", "https://")):
            raise ValueError("--node-url must be an http(s) URL")
        if self.orders_webhook and not self.orders_webhook.startswith(("http://", "https://")):
            raise ValueError("--orders-webhook must be an http(s) URL")
        if (
            self.orders_webhook
            and self.orders_webhook.startswith("http://")
            and not self.orders_webhook_allow_http
        ):
            raise ValueError(
                "--orders-webhook is plain http://: use https://, or pass "
                "--orders-webhook-allow-http for a backend on a trusted network"
            )
        if self.orders_webhook and not self.orders_webhook_secret:
            raise ValueError("--orders-webhook needs --orders-webhook-secret to sign deliveries")
        self.ice_servers.check()
        if self.object_store is not None:
            self.object_store.check()
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both or neither")
        for name, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file: {path}")

    def _check_announce(self) -> None:
        bound = [b for b, _ in self.announce_addresses]
        if len(set(bound)) != len(bound):
            raise ValueError("--announce-address: one announced address per bound address")
        ice = {ipaddress.ip_address(a).compressed for a in self.ice_addresses or ()
               if _is_ip(a)}  # fmt: skip
        for address in bound:
            if self.ice_addresses is not None and address not in ice:
                raise ValueError(
                    f"--announce-address {address}=...: {address} is not an --ice-address "
                    f"(ICE binds {', '.join(self.ice_addresses)})"
                )

    def ice_view(self) -> dict[str, object]:
        """What ICE offers peers, for ``/healthz`` and the banner: the bound addresses
        (``None``: every interface), the announced address of each mapped one, the ports."""
        ports: str | None = None
        if self.udp_mux_port is not None:
            ports = f"mux {self.udp_mux_port}" if self.udp_mux_port else "mux (any free port)"
        elif self.udp_ports is not None:
            ports = f"{self.udp_ports[0]}-{self.udp_ports[1]}"
        return {
            "addresses": list(self.ice_addresses) if self.ice_addresses is not None else None,
            "announced": dict(self.announce_addresses),
            "udp_ports": ports,
        }

    def ice_line(self) -> str:
        """The banner's line: each bound address, what it is announced as, the ports."""
        announced = dict(self.announce_addresses)
        bound = list(self.ice_addresses or ("every interface",))
        bound += [a for a in announced if a not in bound]
        shown = [f"{a} announced as {announced[a]}" if a in announced else a for a in bound]
        ports = self.ice_view()["udp_ports"]
        return ", ".join(shown) + (f"; udp {ports}" if ports else "")

    @property
    def base_url(self) -> str:
        """The URL printed for people; the bind address when no public URL is set."""
        return self.public_url.rstrip("/") if self.public_url else self._bind_url()

    @property
    def peer_url(self) -> str:
        """The URL other nodes reach this node at (``--node-url``; default the bind
        address, loopback for a wildcard bind): never the public URL, which behind a
        load balancer is any node."""
        return self.node_url.rstrip("/") if self.node_url else self._bind_url()

    def _bind_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def media_root(settings: Settings) -> Path:
    """Where recordings, replays and clips are written."""
    return settings.media_dir or settings.data_dir / "media"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as (host, port); ValueError naming it."""
    host, sep, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--metrics-listen {value!r}: give HOST:PORT (e.g. 10.0.0.5:9100)")
    return host, int(port)
