"""The ASGI application of one node."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livecore.clock import Clock, SystemClock
from livecore.communities import load_file
from livecore.config import Settings
from livecore.errors import LivecoreError
from livecore.store.communities import REGISTRY
from media.peers import PeerConfig
from media.udpmux import UdpMux
from media.udpports import PortRange
from signalling import communities, health, http, pages, rooms, sensors, whip
from signalling.context import NodeContext
from signalling.hub.hub import Hub
from signalling.mediaplane import MediaPlane
from signalling.metrics import Metrics
from signalling.orders import OrderForwarder

log = logging.getLogger("livecore")
SAMPLE_COMMUNITIES = (
    Path(__file__).resolve().parent.parent / "livecore" / "data" / "communities.json"
)
#: Connections to Redis/Valkey per node (the bus's pub/sub takes one more).
REDIS_POOL_SIZE = 64


def routes() -> list[Route | Mount]:
    return [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/api/rooms", rooms.create_room, methods=["POST"]),
        Route("/api/rooms", rooms.list_rooms, methods=["GET"]),
        Route("/api/rooms/{room}", rooms.get_room, methods=["GET"]),
        Route("/api/rooms/{room}/ingest-token", sensors.ingest_token, methods=["POST"]),
        Route("/api/rooms/{room}/sensors", sensors.post_readings, methods=["POST"]),
        Route("/whip/{room}", whip.whip_post, methods=["POST"]),
        Route("/whip/{room}", whip.options, methods=["OPTIONS"]),
        Route("/whip/{room}/{session}", whip.whip_delete, methods=["DELETE"]),
        Route("/whip/{room}/{session}", whip.patch, methods=["PATCH"]),
        Route("/whip/{room}/{session}", whip.options, methods=["OPTIONS"]),
        Route("/whep/{room}", whip.whep_post, methods=["POST"]),
        Route("/whep/{room}", whip.options, methods=["OPTIONS"]),
        Route("/whep/{room}/{session}", whip.whep_delete, methods=["DELETE"]),
        Route("/whep/{room}/{session}", whip.patch, methods=["PATCH"]),
        Route("/whep/{room}/{session}", whip.options, methods=["OPTIONS"]),
        Route("/api/communities", communities.list_communities, methods=["GET"]),
        Route("/api/communities", communities.upsert, methods=["POST"]),
        Route("/api/communities/resolve", communities.resolve, methods=["GET"]),
        Route("/api/communities/{community}", communities.delete, methods=["DELETE"]),
        Route("/host/{room}", pages.host_page, methods=["GET"]),
        Route("/r/{room}", pages.viewer_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
    ]


class CountRequests:
    """Counts answered HTTP requests by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                name = getattr(route, "path", "unmatched")
                self.metrics.http_requests.labels(name, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


def create_app(settings: Settings, secret: bytes, clock: Clock | None = None) -> Starlette:
    """Build the node's app; Redis is connected in the lifespan (it needs the loop)."""
    clock = clock or SystemClock()
    metrics = Metrics(settings.node_id)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        assert settings.redis_url is not None, "the server resolves the store before the app"
        # A bounded pool that makes callers wait for a free connection (up to 5 s)
        # instead of failing when many requests are in flight at once.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=REDIS_POOL_SIZE, timeout=5, health_check_interval=10
        )
        redis = Redis(connection_pool=pool)
        app.state.ctx = NodeContext(
            settings=settings,
            secret=secret,
            clock=clock,
            redis=redis,
            metrics=metrics,
            started_at=clock.monotonic(),
        )
        if settings.demo:
            await ensure_demo_room(app.state.ctx)
        hub = Hub(app.state.ctx)
        app.state.hub = hub
        await seed_communities(hub, settings)
        await hub.start()
        ports = PortRange(*settings.udp_ports) if settings.udp_ports else None
        muxes: dict[str, UdpMux] = {}
        if settings.udp_mux_port is not None:
            for address in settings.ice_addresses or ():
                muxes[address] = await UdpMux.open(address, settings.udp_mux_port)
        config = PeerConfig(host_addresses=settings.ice_addresses, udp_ports=ports,
                            udp_mux=muxes or None)  # fmt: skip
        media = MediaPlane(app.state.ctx, hub, config)
        hub.media = app.state.media = media
        media.start()
        forwarder = None
        if settings.orders_webhook and settings.orders_webhook_secret:
            forwarder = OrderForwarder(
                redis, settings.orders_webhook, settings.orders_webhook_secret,
                settings.node_id, clock,
            )  # fmt: skip
            forwarder.start()
        try:
            yield {"hub": hub}  # the websocket seam reads it from uvicorn's app state
        finally:
            if forwarder is not None:
                await forwarder.stop()
            await media.stop()
            for mux in muxes.values():
                mux.close()
            await hub.stop()
            await redis.aclose()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            LivecoreError: http.on_livecore_error,
            HTTPException: http.on_http_exception,
            Exception: http.on_unexpected,
        },
    )
    app.add_middleware(CountRequests, metrics=metrics)
    return app


async def seed_communities(hub: Hub, settings: Settings) -> None:
    """Load ``--communities FILE`` into the registry; with none given, seed the
    bundled sample into an empty registry (the demo's compounds)."""
    path = settings.communities_file
    if path is None:
        if await hub.ctx.redis.exists(REGISTRY):
            return
        path = SAMPLE_COMMUNITIES
    communities = load_file(path)
    await hub.communities.upsert(communities)
    log.info("loaded %d communities from %s", len(communities), path.name)


DEMO_ROOM = "demo"
DEMO_HOST = "demo-host"


async def ensure_demo_room(node: NodeContext) -> None:
    """Create the demo room of ``make run`` once."""
    from livecore.rooms import Room

    now = int(node.clock.time())
    room = Room(
        id=DEMO_ROOM,
        title="Demo: morning harvest from the farm",
        store="Neighbourhood Fresh",
        starts_at=now,
        host=DEMO_HOST,
        created_at=now,
    )
    if await node.rooms.create(room):
        log.info("created demo room %r", DEMO_ROOM)
