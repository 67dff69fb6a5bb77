"""Prometheus metrics of one node (a registry per app, so tests can run several)."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from media.metrics import codec_ops, lean_forwarded, simulcast, transport_cc


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
        self.orders_dead_lettered = Counter(
            "livecore_orders_dead_lettered_total",
            "Orders the webhook refused for good (4xx), moved to the room's dead letters",
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
        r = self.registry
        self.ws_connections = Gauge(
            "livecore_ws_connections", "Joined room-channel websockets", registry=r
        )
        self.rooms = Gauge("livecore_rooms", "Rooms this node listens to", registry=r)
        self.ws_messages_in = Counter(
            "livecore_ws_messages_in_total",
            "Client messages handled, by type",
            ["type"],
            registry=r,
        )
        self.ws_frames_out = Counter(
            "livecore_ws_broadcast_writes_total",
            "Broadcast frames written to connections",
            registry=r,
        )
        self.ws_slow_consumers = Counter(
            "livecore_ws_slow_consumers_total",
            "Connections closed for a full send buffer",
            registry=r,
        )
        self.state_entries = Gauge(
            "livecore_state_entries",
            "Entries of the node's per-room, per-user and per-key structures",
            ["structure"],
            registry=r,
        )
        self.refusals = Counter(
            "livecore_refusals_total",
            "Requests and connections refused by a limit, by limit",
            ["limit"],
            registry=r,
        )
        self.ws_recoveries = Counter(
            "livecore_ws_recoveries_total",
            "Reconnects with a position, by result",
            ["result"],
            registry=r,
        )
        self.bus_gaps = Counter(
            "livecore_bus_gaps_total", "Gaps in a room's events filled from history", registry=r
        )
        self.codec_ops = Gauge(
            "livecore_media_codec_ops",
            "Decodes/encodes counted on the media forwarding path since start (0 when "
            "forwarding works); a gauge read from media.metrics.codec_ops",
            registry=r,
        )
        self.codec_ops.set_function(lambda: codec_ops.value)
        self.lean_frames = Gauge(
            "livecore_media_lean_frames_total",
            "Frames the lean forwarder sent to its viewers (once per frame for all of them)",
            registry=r,
        )
        self.lean_frames.set_function(
            lambda: sum(n for k, n in lean_forwarded.by_reason().items() if k != "resent")
        )
        self.simulcast = Gauge(
            "livecore_media_simulcast_events",
            "Simulcast since start: layers_seen (a publisher's rid arrived), switch_down, "
            "switch_up (a viewer changed layer on a keyframe), gop_served (a viewer's PLI "
            "answered from its layer's GOP); read from media.metrics.simulcast",
            ["event"],
            registry=r,
        )
        for event in ("layers_seen", "switch_down", "switch_up", "gop_served"):
            self.simulcast.labels(event=event).set_function(
                functools.partial(lambda e: simulcast.by_reason().get(e, 0), event)
            )
        self.transport_cc = Gauge(
            "livecore_media_transport_cc_events",
            "Transport-wide congestion control to publishers since start: negotiated (a "
            "WHIP connection asked for it), feedback (RTCP packets sent); read from "
            "media.metrics.transport_cc",
            ["event"],
            registry=r,
        )
        for event in ("negotiated", "feedback"):
            self.transport_cc.labels(event=event).set_function(
                functools.partial(lambda e: transport_cc.by_reason().get(e, 0), event)
            )
        self.media_sessions = Gauge(
            "livecore_media_sessions", "WHIP/WHEP sessions and cascade pulls on this node",
            ["kind"], registry=r,
        )  # fmt: skip
        self.flush_seconds = Histogram(
            "livecore_flush_seconds",
            "Time of one pass of writes over a room's connections",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.gc_pause_seconds = Histogram(
            "livecore_gc_pause_seconds",
            "Event-loop pauses of the cyclic garbage collector, by generation",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        #: Labelled children of the hot counters, looked up once each (the labels are
        #: the wire's message types and error codes: a closed vocabulary).
        self._messages_in: dict[str, Counter] = {}
        self._errors: dict[str, Counter] = {}

    def message_in(self, kind: str) -> None:
        """Count one client message of type ``kind`` (``ws_messages_in``)."""
        child = self._messages_in.get(kind)
        if child is None:
            child = self._messages_in[kind] = self.ws_messages_in.labels(kind)
        child.inc()

    def refused(self, code: str) -> None:
        """Count one refusal sent with error ``code`` (``errors``)."""
        child = self._errors.get(code)
        if child is None:
            child = self._errors[code] = self.errors.labels(code)
        child.inc()
