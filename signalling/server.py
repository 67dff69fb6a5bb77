"""``livecore serve``: run uvicorn on a resolved store, shut down cleanly.

The CLI (:mod:`signalling.cli`) resolves the store first (starting the
embedded Valkey when no URL is given). Order on start: app lifespan
(connects Redis) → listening socket → banner. On SIGTERM/SIGINT: uvicorn
stops accepting and closes connections, the lifespan closes Redis and
:func:`run` returns, after which the CLI stops the embedded Valkey; the
process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any
from urllib.parse import urlsplit

import uvicorn
import uvloop

from livecore import __version__, tokens
from livecore.config import Settings
from livecore.keyring import KeyRing
from media import rtpsend
from signalling.app import DEMO_HOST, DEMO_ROOM, create_app
from signalling.hub.connection import HubConnection
from signalling.routes.health import MetricsOnly

log = logging.getLogger("livecore")
DEMO_TOKEN_TTL_S = 12 * 3600


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the caught signal after shutdown:
    the caller still has the embedded Valkey to stop when serve() returns."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


#: TLS 1.2 suites: forward-secret (ECDHE) AEAD only (TLS 1.3's are all modern and on).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class _Config(uvicorn.Config):
    """uvicorn's config, with TLS 1.2 as the oldest protocol (RFC 8996 retires 1.0 and
    1.1) and :data:`TLS12_CIPHERS` (uvicorn exposes the ciphers, not the minimum)."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2


class _Listener(uvicorn.Server):
    """A second listening socket of the same process (``--metrics-listen``): started
    and stopped by the main server's run, never catching signals itself."""

    async def startup(self, sockets: list[Any] | None = None) -> None:
        self.config.load()
        self.lifespan = self.config.lifespan_class(self.config)
        await super().startup(sockets)


def forwarder_name(forwarder: str) -> str:
    """The forwarder and, for the lean one, which per-viewer loop it runs."""
    if forwarder != "lean":
        return forwarder
    loop = "C loop" if rtpsend.IMPLEMENTATION == "c" else "pure-Python loop, ~4x the CPU"
    return f"lean ({loop})"


def banner(
    settings: Settings, secret: bytes | KeyRing, store: str, workers: list[str] | None = None
) -> str:
    base = settings.base_url
    node = f"node {settings.node_id}"
    if workers:
        node = f"{len(workers)} workers on port {settings.port}"
    lines = [
        f"livecore {__version__} ready — {node}",
        f"  store    {store}",
        f"  media    forwarder {forwarder_name(settings.forwarder)}",
        f"  ice      {settings.ice_line()}",
        f"  nodes    other nodes reach this one at {settings.peer_url}",
        f"  health   {base}/healthz",
        f"  metrics  {base}/metrics",
    ]
    if workers:
        lines.insert(2, f"  workers  {', '.join(workers)} (SO_REUSEPORT, media per worker)")
    if isinstance(secret, KeyRing):
        kids = ", ".join(k.kid for k in secret.keys)
        lines.append(f"  keys     tokens signed with kid {secret.signing.kid!r}; verified: {kids}")
    if settings.demo:
        host = tokens.mint(
            secret, role=tokens.Role.HOST, room=DEMO_ROOM, user=DEMO_HOST, ttl_s=DEMO_TOKEN_TTL_S
        )
        viewer = tokens.mint(
            secret, role=tokens.Role.VIEWER, room=DEMO_ROOM, user="demo-viewer",
            ttl_s=DEMO_TOKEN_TTL_S,
        )  # fmt: skip
        # The brand board reads every room: an admin token, as short-lived as the others.
        admin = tokens.mint(
            secret, role=tokens.Role.ADMIN, room="*", user="demo-admin", ttl_s=DEMO_TOKEN_TTL_S
        )
        lines += [
            f"  host     {base}/host/{DEMO_ROOM}#token={host}",
            f"  viewer   {base}/r/{DEMO_ROOM}#token={viewer}",
            f"  share    {base}/r/{DEMO_ROOM}  (no token: a guest enters by itself)",
            f"  dashboard {base}/d/{DEMO_ROOM}#token={host}",
            f"  board    {base}/board#token={admin}",
            f"  host token for room {DEMO_ROOM!r} (12 h): {host}",
            f"  admin token (12 h): {admin}",
            "  more tokens: livecore token --help",
        ]
    return "\n".join(lines)


def bound_socket(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening yet: the caller or uvicorn
    calls ``listen``); ``shared`` adds ``SO_REUSEPORT``."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def shared_socket(host: str, port: int) -> socket.socket:
    """``host:port`` with ``SO_REUSEPORT``: each worker of ``serve --workers`` binds its
    own, and the kernel spreads new connections over the listening ones."""
    return bound_socket(host, port, shared=True)


def peer_socket(settings: Settings) -> tuple[socket.socket, Settings]:
    """A worker's own node address, bound: ``--node-url``'s host and port (the
    supervisor gave each worker its own port), else a free port on loopback, which
    only the siblings on this machine reach. The settings name it as ``node_url``."""
    if settings.node_url:
        url = urlsplit(settings.node_url)
        host = url.hostname or "127.0.0.1"
        port = url.port or (443 if url.scheme == "https" else 80)
    else:
        host, port = "127.0.0.1", 0
    try:
        sock = bound_socket(host, port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on the node address {host}:{port}: {exc}") from None
    if settings.node_url:
        return sock, settings
    bound = sock.getsockname()[1]
    return sock, dataclasses.replace(settings, node_url=f"http://127.0.0.1:{bound}")


async def _serve(
    settings: Settings, secret: bytes, store: str, ring: KeyRing | None,
    on_ready: Callable[[], None] | None = None,
) -> None:  # fmt: skip
    sockets = None
    if on_ready is not None:
        # A worker of `serve --workers`: the port shared with its siblings
        # (SO_REUSEPORT), and a node address of its own for them and other nodes.
        peer, settings = peer_socket(settings)
        sockets = [shared_socket(settings.host, settings.port), peer]
    app = create_app(settings, secret, key_ring=ring)
    config = _Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="none",
        http="httptools",
        ws=HubConnection,  # the room channel owns its websockets (see hub/connection.py)
        lifespan="on",
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=5,
        server_header=False,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        ssl_ciphers=TLS12_CIPHERS,
        # X-Forwarded-For only from configured proxies: from anyone else it
        # would let a client pick its own rate-limit key.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or "",
    )
    server = _Server(config)
    scraper: _Listener | None = None
    if settings.metrics_listen is not None:
        host, port = settings.metrics_listen
        scraper = _Listener(uvicorn.Config(
            MetricsOnly(app), host=host, port=port, loop="none", http="httptools",
            lifespan="off", log_level=settings.log_level, access_log=False, server_header=False,
        ))  # fmt: skip

    async def announce() -> None:
        while not server.started and not server.should_exit:  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.05)
        if server.started:
            if scraper is not None:  # after the lifespan: /metrics reads the app's state
                await scraper.startup()
            if on_ready is None:
                print(banner(settings, ring or secret, store), flush=True)
            else:
                on_ready()

    task = asyncio.create_task(announce())
    _tune_gc()
    try:
        await server.serve(sockets)
    finally:
        task.cancel()
        if scraper is not None and scraper.started:
            await scraper.shutdown()
    if not server.started:
        raise SystemExit(1)


def _tune_gc() -> None:
    """Keep the cyclic GC off the broadcast path.

    Tens of thousands of long-lived connection objects make every full
    collection walk them all, a pause of tens of milliseconds that every
    viewer feels. Objects alive after start-up are frozen out of collection,
    and young-generation collections run less often (connection state is
    acyclic; the few cycles are still collected).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(
    settings: Settings, secret: bytes, store: str, ring: KeyRing | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:  # fmt: skip
    """Run a node on ``settings.redis_url`` until SIGTERM/SIGINT; the exit code.

    ``store`` describes the store for the banner. With ``on_ready`` the node is a
    worker of ``serve --workers`` (:mod:`signalling.cli.workers`): it binds its own
    ``SO_REUSEPORT`` socket on the shared port and calls ``on_ready`` instead of
    printing the banner (the supervisor prints one for all).
    """
    assert settings.redis_url is not None, "the CLI resolves the store first"
    _run_loop(_serve(settings, secret, store, ring, on_ready))
    return 0


def _run_loop(coro: Any) -> None:
    uvloop.run(coro)
