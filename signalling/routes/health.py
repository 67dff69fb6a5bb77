"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import ipaddress
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from livecore import tokens
from livecore.store.client import answers
from signalling.node.http_boundary import authorize, ctx

ADMIN = frozenset({tokens.Role.ADMIN})
#: Set in the scope of requests that came in on the ``--metrics-listen`` address.
METRICS_LISTENER = "livecore.metrics_listener"

REDIS_CHECK_TIMEOUT_S = 1.0


async def redis_ok(request: Request) -> bool:
    node = ctx(request)
    try:
        async with asyncio.timeout(REDIS_CHECK_TIMEOUT_S):
            ok = await answers(node.redis)
    except (RedisError, OSError, TimeoutError):
        ok = False
    node.metrics.redis_up.set(1 if ok else 0)
    return ok


async def healthz(request: Request) -> Response:
    """200 when Redis/Valkey answers within a second, else 503; JSON body either way."""
    node = ctx(request)
    ok = await redis_ok(request)
    body = {
        "status": "ok" if ok else "degraded",
        "node_id": node.settings.node_id,
        "redis": ok,
        "uptime_s": round(node.clock.monotonic() - node.started_at, 3),
        "ice": node.settings.ice_view(),
    }
    return JSONResponse(body, status_code=200 if ok else 503)


def state_sizes(request: Request) -> dict[str, int]:
    """Every bounded structure of the node and its entries now."""
    node = ctx(request)
    sizes = {"http_writes": len(node.http_writes), "device_posts": len(node.device_posts),
             "media_posts": len(node.media_posts),
             "guest_mints": len(node.guest_mints),
             "guest_new": len(node.guest_new)}  # fmt: skip
    hub = getattr(request.app.state, "hub", None)
    if hub is not None:
        sizes.update(hub.sizes())
    media = getattr(request.app.state, "media", None)
    if media is not None:
        sizes.update(media.sizes())
    return sizes


#: A loop whose last turn is older than this is stuck (seconds; its own period is
#: 0.05 s for the broadcast, 0.25 s housekeeping, ≤ 1 s the bus read, 2 s media).
STUCK_AFTER_S = {"broadcast": 3.0, "housekeeping": 3.0, "bus": 5.0, "media": 8.0}


def stuck_loops(beats: dict[str, float], now: float) -> list[str]:
    """The loops whose last turn (monotonic ``beats``) is too old at ``now``. Pure."""
    return sorted(name for name, at in beats.items() if now - at > STUCK_AFTER_S[name])


def loop_beats(request: Request) -> dict[str, float]:
    beats: dict[str, float] = {}
    hub = getattr(request.app.state, "hub", None)
    if hub is not None:
        beats["broadcast"] = hub.ticker.last_beat
        beats["housekeeping"] = hub.housekeeper.last_beat
        beats["bus"] = hub.reader.last_beat
    media = getattr(request.app.state, "media", None)
    if media is not None:
        beats["media"] = media.last_beat
    return beats


async def readyz(request: Request) -> Response:
    """Readiness: 200 when Valkey answers and every loop of the node (broadcast,
    housekeeping, bus read, media heartbeat) turned recently, else 503 naming
    what is wrong; a load balancer sends new clients elsewhere meanwhile."""
    node = ctx(request)
    ok = await redis_ok(request)
    stuck = stuck_loops(loop_beats(request), time.monotonic())
    ready = ok and not stuck
    body = {"status": "ready" if ready else "not_ready", "node_id": node.settings.node_id,
            "redis": ok, "stuck": stuck}  # fmt: skip
    return JSONResponse(body, status_code=200 if ready else 503)


FORWARDING_HEADERS = ("x-forwarded-for", "forwarded")


def direct_loopback(request: Request) -> bool:
    """A client on this machine talking to the node itself, not through a proxy (a
    local reverse proxy would make every client look like loopback: its forwarding
    header gives it away)."""
    host = request.client.host if request.client is not None else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback  # 127.0.0.0/8, ::1
    except ValueError:
        return False
    return loopback and not any(h in request.headers for h in FORWARDING_HEADERS)


async def metrics(request: Request) -> Response:
    """``GET /metrics``: open to a scraper on the node's machine (loopback, not proxied)
    and on the ``--metrics-listen`` address; from anywhere else an admin token (``*``)."""
    if not request.scope.get(METRICS_LISTENER) and not direct_loopback(request):
        await authorize(request, room=None, roles=ADMIN)
    node = ctx(request)
    node.metrics.uptime.set(node.clock.monotonic() - node.started_at)
    media = getattr(request.app.state, "media", None)
    if media is not None:
        for kind in ("whip", "whep"):
            count = sum(1 for e in media.entries.values() if e.kind == kind)
            node.metrics.media_sessions.labels(kind).set(count)
        node.metrics.media_sessions.labels("pull").set(len(media.copies.pulled))
    for name, size in state_sizes(request).items():
        node.metrics.state_entries.labels(name).set(size)
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsOnly:
    """The app as the ``--metrics-listen`` address serves it: ``GET /metrics`` (no token:
    the operator put this address where only the scraper reaches it), 404 otherwise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await self.app({**scope, METRICS_LISTENER: True}, receive, send)
        elif scope["type"] == "http":
            await PlainTextResponse("only /metrics here\n", status_code=404)(scope, receive, send)
