"""Prometheus metrics of one node (a registry per app, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Info


class Metrics:
    """The node's metric families; ``/metrics`` renders ``registry``."""

    def __init__(self, node_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.info = Info("livecore_node", "This node", registry=self.registry)
        self.info.info({"node_id": node_id})
        self.http_requests = Counter(
            "livecore_http_requests_total",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "livecore_errors_total",
            "Refusals sent to clients, by error code",
            ["code"],
            registry=self.registry,
        )
        self.uptime = Gauge(
            "livecore_uptime_seconds", "Seconds since this node started", registry=self.registry
        )
        self.redis_up = Gauge(
            "livecore_redis_up",
            "1 when the last Redis/Valkey check answered",
            registry=self.registry,
        )
