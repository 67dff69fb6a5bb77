"""What the traceability endpoints share: the stores, the signing key, limits.

Built once per node on first use (``for_node``) so the shared modules (app,
context) need no change beyond the routes; the hub's ``batch_pin`` handler
reaches the same object with ``for_node(node)`` (see docs/protocol.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgpack
from starlette.requests import Request

from livecore.clock import Clock
from livecore.errors import ErrorCode, LivecoreError
from livecore.ratelimit import KeyedLimiter
from livecore.store.client import StoreClient
from livecore.store.series import SeriesStore
from livecore.store.trace import BatchStore, key
from livecore.trace import card, chain, events, series
from livecore.trace.keyfile import load_signing_key
from signalling.node.context import NodeContext
from signalling.node.http_boundary import ctx

log = logging.getLogger("livecore.trace")
#: Batches whose first record (thresholds, start) a node keeps for ingest.
META_CACHE = 10_000


@dataclass
class TraceService:
    redis: StoreClient
    clock: Clock
    signing_key: Any
    batches: BatchStore = field(init=False)
    sensors: SeriesStore = field(init=False)
    #: Device posts: 5/s, bursts of 20; readings: 200/s, bursts of 5,000 (a backlog upload).
    posts: KeyedLimiter = field(init=False)
    budget: KeyedLimiter = field(init=False)
    #: Live pushes into a room: one per batch and room per second.
    pushes: KeyedLimiter = field(init=False)
    _meta: OrderedDict[str, dict[str, Any]] = field(init=False, default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.batches = BatchStore(self.redis, self.signing_key)
        self.sensors = SeriesStore(self.redis)
        self.posts = KeyedLimiter(self.clock, rate=5.0, burst=20.0)
        self.budget = KeyedLimiter(self.clock, rate=200.0, burst=5000.0)
        self.pushes = KeyedLimiter(self.clock, rate=1.0, burst=1.0)

    @property
    def public_key(self) -> Any:
        return self.signing_key.public_key()

    def jwk(self) -> dict[str, str]:
        return chain.public_jwk(self.public_key)

    async def first_record(self, batch: str) -> dict[str, Any]:
        """Record 0 (immutable once written), cached; ``batch_not_found`` if none."""
        found = self._meta.get(batch)
        if found is not None:
            self._meta.move_to_end(batch)
            return found
        raw = await self.redis.lindex(key(batch, "chain"), 0)
        if raw is None:
            raise LivecoreError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch!r}")
        record: dict[str, Any] = json.loads(raw)
        self._meta[batch] = record
        if len(self._meta) > META_CACHE:
            self._meta.popitem(last=False)
        return record

    async def overview(self, batch: str) -> dict[str, Any]:
        """Summary, records, signed head, series index, rooms and the server's own check."""
        records, head, owner = await self.batches.chain(batch)
        verdict = chain.verify_chain(records, head, self.public_key, batch=batch)
        return {
            "batch": events.summary(records),
            "owner": owner,
            "records": records,
            "head": head.to_dict(),
            "key": self.jwk(),
            "verified": verdict.ok,
            "series": [
                {
                    **s,
                    **series.describe(s["kind"]),
                    "band": records[0]["data"].get("thresholds", {}).get(s["kind"]),
                }
                for s in await self.sensors.index(batch)
            ],
            "rooms": await self.batches.rooms(batch),
        }

    async def charts(
        self, batch: str, points: int = series.MAX_POINTS, *, raw: bool = True
    ) -> list[dict[str, Any]]:
        """Per series: downsampled aggregates over its whole life, the raw recent
        window, and excursion runs with their peaks."""
        first = await self.first_record(batch)
        bands = first["data"].get("thresholds", {})
        out = []
        for s in await self.sensors.index(batch):
            kind = series.KINDS[s["kind"]]
            start, end = s["first"], s["last"]
            level, width = series.pick_level(end - start, points)
            slots = await self.sensors.slots(batch, s["series"], level, start, end)
            window = await self.sensors.raw(batch, s["series"]) if raw else []
            runs = series.merge_excursions(await self.sensors.excursions(batch, s["series"]))
            out.append({
                "series": s["series"], "device": s["device"], **series.describe(s["kind"]),
                "band": bands.get(s["kind"]), "level": level, "first": start, "last": end,
                "count": s["count"], "excursion_count": s["excursions"],
                "points": series.downsample(slots, kind, start=start, end=end + width,
                                            points=points),
                "raw": [[t, series.from_units(kind, u)] for t, u in window if t >= end - 86400],
                "excursions": await self._runs(batch, s["series"], kind, runs[-50:]),
            })  # fmt: skip
        return out

    async def _runs(
        self, batch: str, sid: str, kind: series.Kind, runs: list[tuple[int, int]]
    ) -> list[dict[str, Any]]:
        out = []
        for lo, hi in runs:
            slots = await self.sensors.slots(batch, sid, "m", lo * 60, hi * 60)
            if not slots:
                continue
            peak_hi = max(s[3] for s in slots)
            peak_lo = min(s[2] for s in slots)
            out.append({
                "from": lo * 60, "to": hi * 60 + 59,
                "max": series.from_units(kind, peak_hi), "min": series.from_units(kind, peak_lo),
            })  # fmt: skip
        return out

    async def pin_card(self, batch: str) -> dict[str, Any]:
        """The card a pinned batch shows in the live room (see livecore/trace/card.py)."""
        view = await self.overview(batch)
        latest = [
            {k: s[k] for k in ("series", "device", "kind", "value", "at")} for s in view["series"]
        ]
        spark: list[list[float]] = []
        main = next((s for s in view["series"] if s["kind"] == "cold_chain_c"), None)
        main = main or (view["series"][0] if view["series"] else None)
        if main is not None:
            kind = series.KINDS[main["kind"]]
            raw = await self.sensors.raw(batch, main["series"])
            spark = [[t, series.from_units(kind, u)] for t, u in raw]
        return card.pin_card(view["batch"], latest, spark, verified=view["verified"])

    async def pin(self, batch: str, room: str) -> dict[str, Any]:
        """What the hub's ``batch_pin`` handler calls: remember the pin (live readings
        go to the room for 12 h; the room is listed as where the batch is sold) and
        return the card to emit as the room's ``trace`` card."""
        payload = await self.pin_card(batch)
        await self.batches.pin(batch, room, now=int(self.clock.time()))
        return payload

    async def unpin(self, batch: str, room: str) -> None:
        """What the hub's ``batch_unpin`` handler calls: live readings stop going there."""
        await self.batches.unpin(batch, room)

    def sensor_event(
        self, batch: str, device: str, readings: list[series.Reading], bands: dict[str, Any]
    ) -> bytes:
        """A room ``sensor`` event with the newest reading of each series, named and flagged."""
        newest: dict[str, series.Reading] = {}
        for r in readings:
            if r.series not in newest or r.at >= newest[r.series].at:
                newest[r.series] = r
        items = [
            card.live_reading(
                {
                    "series": r.series,
                    "device": device,
                    "kind": r.kind,
                    "at": r.at,
                    "value": series.from_units(series.KINDS[r.kind], r.units),
                },
                bands,
            )
            for r in newest.values()
        ]
        return bytes(msgpack.packb({"t": "sensor", "device": device, "batch": batch,
                                    "readings": items}))  # fmt: skip


def for_node(node: NodeContext) -> TraceService:
    """The node's TraceService, made on first use (loads or creates the signing key).
    The hub's ``batch_pin`` handler calls ``for_node(node).pin(batch, room)``."""
    found: TraceService | None = getattr(node, "_trace_service", None)
    if found is None:
        began = time.monotonic()
        signing = load_signing_key(node.settings.data_dir, create=True)
        found = TraceService(node.redis, node.clock, signing)
        setattr(node, "_trace_service", found)  # noqa: B010 - the context is shared, not ours
        log.info("trace signing key %s ready in %.0f ms", chain.key_id(signing.public_key()),
                 (time.monotonic() - began) * 1000)  # fmt: skip
    return found


def service(request: Request) -> TraceService:
    return for_node(ctx(request))
