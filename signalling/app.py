"""The ASGI application of one node."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livecore.clock import Clock, SystemClock
from livecore.communities import load_file
from livecore.config import Settings
from livecore.errors import ErrorCode, LivecoreError
from livecore.keyring import KeyRing
from livecore.rooms import Room
from livecore.store.client import open_store
from livecore.store.communities import REGISTRY
from livecore.store.migrate import migrate as migrate_layout
from media.peers import PeerConfig
from media.udpmux import UdpMux
from media.udpports import PortRange
from signalling.hub.hub import Hub
from signalling.node import http_boundary
from signalling.node.context import NodeContext
from signalling.node.gcwatch import GcWatch, IdleCollector
from signalling.node.headers import SecurityHeaders
from signalling.node.metrics import Metrics
from signalling.routes import (
    communities,
    dashboard,
    demoshop,
    draws,
    explains,
    groupprogress,
    guests,
    health,
    iceservers,
    mediafiles,
    objectmedia,
    pages,
    pickup,
    receipts,
    reserve,
    revocations,
    rooms,
    sensors,
    trace,
    whip,
)
from signalling.routes.trace import service as trace_service
from signalling.services.dash_sampler import DashboardSampler
from signalling.services.engagement import Engagement
from signalling.services.lifecycle import RoomLifecycle
from signalling.services.medialookup import MediaLookup
from signalling.services.mediaplane import MediaPlane
from signalling.services.orders import OrderForwarder
from signalling.services.peerhop import Hops
from signalling.services.recording import RecordingPlane

log = logging.getLogger("livecore")
SAMPLE_COMMUNITIES = (
    Path(__file__).resolve().parent.parent / "livecore" / "data" / "communities.json"
)
#: Connections to Redis/Valkey per node (the bus's pub/sub takes one more).
REDIS_POOL_SIZE = 64


def routes() -> list[Route | Mount]:
    return [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/api/rooms", rooms.create_room, methods=["POST"]),
        Route("/api/rooms", rooms.list_rooms, methods=["GET"]),
        Route("/api/rooms/{room}", rooms.get_room, methods=["GET"]),
        Route("/api/rooms/{room}/end", rooms.end_room, methods=["POST"]),
        Route("/api/revocations", revocations.revoke, methods=["POST"]),
        Route("/api/rooms/{room}/ingest-token", sensors.ingest_token, methods=["POST"]),
        Route("/api/rooms/{room}/sensors", sensors.post_readings, methods=["POST"]),
        Route("/api/rooms/{room}/ice-servers", iceservers.ice_servers, methods=["GET"]),
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
        Route("/api/rooms/{room}/receipts", receipts.post_receipt, methods=["POST"]),
        Route("/api/rooms/{room}/orders/dead", receipts.dead_letters, methods=["GET"]),
        Route("/api/rooms/{room}/orders/redrive", receipts.redrive, methods=["POST"]),
        Route("/api/rooms/{room}/demo/receipts", demoshop.confirm_group, methods=["POST"]),
        Route("/api/communities", communities.list_communities, methods=["GET"]),
        Route("/api/communities", communities.upsert, methods=["POST"]),
        Route("/api/communities/resolve", communities.resolve, methods=["GET"]),
        Route("/api/communities/{community}", communities.delete, methods=["DELETE"]),
        *trace.routes(),
        *guests.routes(),
        *draws.routes(),
        *pickup.routes(),
        *reserve.routes(),
        *dashboard.routes(),
        *pages.routes(),
        Mount("/static", StaticFiles(directory=pages.STATIC), name="static"),
        *media_routes(),
    ]


def media_routes() -> list[Route | Mount]:
    """Recorded media (HLS, replay, clips), the clip library, marks, the share page."""
    m = mediafiles
    return [
        Route("/hls/{room}/{playlist}", m.hls_playlist, methods=["GET"]),
        Route("/hls/{room}/{stream}/{name}", m.hls_segment, methods=["GET"]),
        Route("/replay/{name}", m.replay, methods=["GET"]),
        Route("/media/clips/{name}", m.clip_file, methods=["GET"]),
        Route("/api/rooms/{room}/clips", m.list_clips, methods=["GET"]),
        Route("/api/rooms/{room}/clips/{clip}", m.delete_clip, methods=["DELETE"]),
        Route("/api/rooms/{room}/mark", m.mark, methods=["POST"]),
        Route("/api/rooms/{room}/explains", explains.list_explains, methods=["GET"]),
        Route("/api/clips/{clip}/click", explains.click, methods=["POST"]),
        Route("/api/rooms/{room}/groupbuys", groupprogress.groupbuys, methods=["GET"]),
        Route("/api/clips/{clip}", m.get_clip, methods=["GET"]),
        Route("/c/{clip}", m.share_page, methods=["GET"]),
        Route("/clips/{room}", m.library_page, methods=["GET"]),
    ]


#: Request headers a node reads at most (RFC 6585 §5: 431 beyond).
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024


class LimitHeaders:
    """Refuses a request with too many or too large headers (431), before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers", [])
            size = sum(len(k) + len(v) for k, v in headers)
            if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
                err = LivecoreError(
                    ErrorCode.HEADERS_TOO_LARGE,
                    f"at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all",
                )
                response = http_boundary.error_response(err, {"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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


async def announce_clip(node: NodeContext, room: str, payload: dict[str, Any]) -> None:
    """A clip was cut: the room's ``clip_ready`` event (hosts and officers list it)."""
    await node.stores.bus.emit(room, msgpack.packb(payload))


def create_app(
    settings: Settings, secret: bytes, clock: Clock | None = None, key_ring: KeyRing | None = None
) -> Starlette:
    """Build the node's app; Redis is connected in the lifespan (it needs the loop).
    ``key_ring``: every token key (default: ``secret`` alone, :mod:`livecore.keyring`)."""
    clock = clock or SystemClock()
    metrics = Metrics(settings.node_id)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        assert settings.redis_url is not None, "the server resolves the store before the app"
        # A bounded pool per server (one Valkey, or each shard of a cluster).
        redis = await open_store(settings.redis_url, max_connections=REDIS_POOL_SIZE)
        app.state.ctx = NodeContext(
            settings=settings,
            secret=secret,
            clock=clock,
            redis=redis,
            metrics=metrics,
            started_at=clock.monotonic(),
            key_ring=key_ring,
        )
        # Every script on every server now: a sale's first taps pay no SCRIPT LOAD.
        await app.state.ctx.stores.preload()
        moved = await migrate_layout(redis)
        if moved:
            log.info("moved %d index entries to the bucketed layout", moved)
        if settings.demo:
            await ensure_demo_room(app.state.ctx)
        hub = Hub(app.state.ctx)
        app.state.hub = hub
        await seed_communities(app.state.ctx, settings)
        await hub.start()
        ports = PortRange(*settings.udp_ports) if settings.udp_ports else None
        muxes: dict[str, UdpMux] = {}
        if settings.udp_mux_port is not None:
            for address in settings.ice_addresses or ():
                muxes[address] = await UdpMux.open(address, settings.udp_mux_port)
        config = PeerConfig(host_addresses=settings.ice_addresses, udp_ports=ports,
                            udp_mux=muxes or None,
                            announce=settings.announce_addresses)  # fmt: skip
        media = MediaPlane(app.state.ctx, hub.rooms, config)
        app.state.media = media
        hellos_observe = hub.ticker.on_late

        idle_gc = IdleCollector()

        def on_late(late_s: float) -> None:  # the tick's lateness gates hellos and offers
            hellos_observe(late_s)
            media.offers.observe(late_s)
            idle_gc.tick(late_s)  # and collects the young generation while the loop is idle

        hub.ticker.on_late = on_late
        hub.reader.on_media_end = media.end_user  # co-streams ended on other nodes
        hub.reader.on_kill.append(media.kill)  # revocations and room ends from every node
        recording = app.state.recording = media.recording = RecordingPlane(app.state.ctx)
        hub.reader.on_kill.append(recording.hls.room_killed)  # a room's end ends its HLS
        recording.on_clip_ready = functools.partial(announce_clip, app.state.ctx)
        # Every node counts its audience for the node recording the room.
        engagement = app.state.engagement = media.engagement = Engagement(app.state.ctx)
        recording.pull_video = media.costream_video  # a KOC on another node, recorded here
        hub.node.moments = engagement
        engagement.start()
        hub.node.batches = trace_service.for_node(app.state.ctx)
        recording.start()
        app.state.hops = hops = Hops()  # one client for every request to another node
        app.state.media_lookup = MediaLookup(
            app.state.ctx, recording, hops, objectmedia.from_object_store
        )
        lifecycle = app.state.lifecycle = media.lifecycle = RoomLifecycle(app.state.ctx)
        lifecycle.start()
        sampler = DashboardSampler(app.state.ctx, lambda: hub.rooms.keys())
        sampler.start()
        media.start()
        forwarder = None
        if settings.orders_webhook and settings.orders_webhook_secret:
            forwarder = OrderForwarder(
                redis, settings.orders_webhook, settings.orders_webhook_secret,
                settings.node_id, clock,
                on_dead_letter=lambda room: metrics.orders_dead_lettered.inc(),
            )  # fmt: skip
            forwarder.start()
        gc_watch = GcWatch(metrics.gc_pause_seconds)
        gc_watch.start()
        try:
            yield {"hub": hub}  # the websocket seam reads it from uvicorn's app state
        finally:
            if forwarder is not None:
                await forwarder.stop()
            await lifecycle.stop()
            await sampler.stop()
            await media.stop()
            await engagement.stop()
            await recording.stop()
            await hops.close()
            for mux in muxes.values():
                mux.close()
            await hub.stop()
            gc_watch.stop()
            await redis.aclose()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            LivecoreError: http_boundary.on_livecore_error,
            HTTPException: http_boundary.on_http_exception,
            RedisError: http_boundary.on_store_error,
            Exception: http_boundary.on_unexpected,
        },
    )
    app.add_middleware(CountRequests, metrics=metrics)
    app.add_middleware(LimitHeaders)
    app.add_middleware(whip.MediaCors)  # a 431 of LimitHeaders gets CORS too
    app.add_middleware(SecurityHeaders)  # outermost: every answer, errors included
    return app


async def seed_communities(node: NodeContext, settings: Settings) -> None:
    """Load ``--communities FILE`` into the registry; with none given, seed the
    bundled sample into an empty registry (the demo's compounds)."""
    path = settings.communities_file
    if path is None:
        if await node.redis.exists(REGISTRY):
            return
        path = SAMPLE_COMMUNITIES
    communities = load_file(path)
    await node.stores.communities.upsert(communities)
    log.info("loaded %d communities from %s", len(communities), path.name)


DEMO_ROOM = "demo"
DEMO_HOST = "demo-host"


async def ensure_demo_room(node: NodeContext) -> None:
    """Create the demo room of ``make run`` once."""
    now = int(node.clock.time())
    room = Room(
        id=DEMO_ROOM,
        title="演示直播：今早刚摘的水蜜桃",
        store="邻里鲜社区店",
        starts_at=now,
        host=DEMO_HOST,
        created_at=now,
    )
    if await node.rooms.create(room):
        log.info("created demo room %r", DEMO_ROOM)
