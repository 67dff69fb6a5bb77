"""A batch and the events of its life (pure checks).

Record 0 of a chain registers the batch (``registered``: product, brand,
origin, thresholds); later records are life events in the order they
happened: planted, fertilised, harvested, processed (with the workshop's
temperature and humidity), tested (a report file by its SHA-256), shipped,
delivered. Each has ``at`` (Unix seconds), ``place``, ``actor`` and
``data``; ``recorded_at`` is when the server appended it.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Any

from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import valid_id
from livecore.trace import series

#: Events one batch may hold (record 0 included); a chain is read whole.
MAX_EVENTS = 200
#: Canonical bytes one record may take.
MAX_RECORD_BYTES = 4096
#: How far ahead of the server's clock an event or reading may be (clock skew).
FUTURE_SKEW_S = 300
#: How far back a life event may be dated (a tea bush, an orchard: years).
EVENT_PAST_S = 3 * 366 * 86400
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class EventType(StrEnum):
    REGISTERED = "registered"
    PLANTED = "planted"
    FERTILISED = "fertilised"
    HARVESTED = "harvested"
    PROCESSED = "processed"
    TESTED = "tested"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


#: Life order: an event may not follow one of a higher stage (fertilised only before
#: the harvest; a lab test any time after it). ``ONCE`` may appear at most once.
STAGE = {
    EventType.REGISTERED: 0, EventType.PLANTED: 1, EventType.FERTILISED: 2,
    EventType.HARVESTED: 3, EventType.PROCESSED: 4, EventType.TESTED: 4,
    EventType.SHIPPED: 5, EventType.DELIVERED: 6,
}  # fmt: skip
ONCE = frozenset(
    {EventType.REGISTERED, EventType.PLANTED, EventType.HARVESTED, EventType.DELIVERED}
)

#: Per type: field -> (kind, required). Kinds: "str" (≤ 120), "text" (≤ 300),
#: "num:<lo>:<hi>", "bool", "sha256", "result", "devices".
_DATA: dict[EventType, dict[str, tuple[str, bool]]] = {
    EventType.PLANTED: {"field": ("str", False), "crop": ("str", False), "variety": ("str", False)},
    EventType.FERTILISED: {
        "fertiliser": ("str", True), "amount_kg": ("num:0:1000000", False),
        "organic": ("bool", False),
    },
    EventType.HARVESTED: {"quantity_kg": ("num:0:10000000", False), "field": ("str", False)},
    EventType.PROCESSED: {
        "workshop_temp_c": ("num:-30:60", True), "workshop_humidity_pct": ("num:0:100", True),
        "steps": ("text", False),
    },
    EventType.TESTED: {
        "report": ("sha256", True), "lab": ("str", True), "result": ("result", True),
        "items": ("text", False),
    },
    EventType.SHIPPED: {
        "carrier": ("str", False), "vehicle": ("str", False), "devices": ("devices", False),
    },
    EventType.DELIVERED: {"receiver": ("str", False)},
}  # fmt: skip
_COMMON = {"note": ("text", False)}


def invalid(field: str, why: str) -> LivecoreError:
    return LivecoreError(ErrorCode.INVALID_FIELD, f"{field}: {why}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any, field: str, limit: int, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit:
        raise invalid(field, f"required, 1-{limit} characters")
    return value.strip()


def check_time(value: Any, field: str, *, now: float, past_s: float) -> int:
    """Unix seconds, not after now (+ skew) and not older than ``past_s``."""
    if not _number(value):
        raise invalid(field, "must be Unix seconds")
    if value > now + FUTURE_SKEW_S:
        raise LivecoreError(ErrorCode.BAD_TIMESTAMP, f"{field}: {int(value)} is in the future")
    if value < now - past_s:
        raise LivecoreError(
            ErrorCode.BAD_TIMESTAMP,
            f"{field}: {int(value)} is more than {past_s // 86400:.0f} days ago",
        )
    return int(value)


def _place(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not set(value) <= {"name", "lat", "lng"}:
        raise invalid("place", "must be {name, lat?, lng?}")
    place: dict[str, Any] = {"name": _text(value.get("name"), "place.name", 120)}
    if ("lat" in value) != ("lng" in value):
        raise invalid("place", "lat and lng come together")
    if "lat" in value:
        lat, lng = value["lat"], value["lng"]
        if not (_number(lat) and -90 <= lat <= 90 and _number(lng) and -180 <= lng <= 180):
            raise LivecoreError(ErrorCode.OUT_OF_RANGE, "place: lat -90..90, lng -180..180")
        place["lat"], place["lng"] = round(lat, 6), round(lng, 6)
    return place


def _value(kind: str, value: Any, field: str) -> Any:
    if kind in ("str", "text"):
        return _text(value, field, 120 if kind == "str" else 300)
    if kind.startswith("num:"):
        lo, hi = (float(x) for x in kind.split(":")[1:])
        if not _number(value):
            raise invalid(field, "must be a number")
        if not lo <= value <= hi:
            raise LivecoreError(
                ErrorCode.OUT_OF_RANGE, f"{field}: {value} is outside {lo:g}..{hi:g}"
            )
        return round(value, 3)
    if kind == "bool":
        if not isinstance(value, bool):
            raise invalid(field, "must be true or false")
        return value
    if kind == "sha256":
        if not isinstance(value, str) or not _SHA256.match(value):
            raise invalid(field, "must be the report's SHA-256 (64 lowercase hex)")
        return value
    if kind == "result":
        if value not in ("pass", "fail"):
            raise invalid(field, "must be pass or fail")
        return value
    if not (isinstance(value, list) and 1 <= len(value) <= 8):
        raise invalid(field, "must be a list of 1-8 device ids")
    for device in value:
        if not isinstance(device, str) or not valid_id(device):
            raise invalid(field, "device ids are 1-64 of A-Z a-z 0-9 _ . : -")
    return list(value)


def _data(kind: EventType, value: Any) -> dict[str, Any]:
    spec = {**_DATA[kind], **_COMMON}
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise invalid("data", "must be an object")
    extra = sorted(set(value) - set(spec))
    if extra:
        raise invalid(f"data.{extra[0]}", f"not a field of a {kind.value} event")
    out = {}
    for name, (vkind, required) in spec.items():
        if name not in value:
            if required:
                raise invalid(f"data.{name}", f"required for a {kind.value} event")
            continue
        out[name] = _value(vkind, value[name], f"data.{name}")
    return out


def parse_event(body: Any, *, now: float) -> dict[str, Any]:
    """``{type, at, place, actor, data?}`` → the record body (without chain fields)."""
    if not isinstance(body, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    extra = sorted(set(body) - {"type", "at", "place", "actor", "data"})
    if extra:
        raise invalid(extra[0], "not a field of an event")
    try:
        kind = EventType(str(body.get("type")))
    except ValueError:
        kind = EventType.REGISTERED
    if kind is EventType.REGISTERED:
        names = ", ".join(t.value for t in EventType if t is not EventType.REGISTERED)
        raise invalid("type", f"must be one of {names}")
    return {
        "type": kind.value,
        "at": check_time(body.get("at", now), "at", now=now, past_s=EVENT_PAST_S),
        "place": _place(body.get("place")),
        "actor": _text(body.get("actor"), "actor", 80),
        "data": _data(kind, body.get("data")),
    }


def parse_registration(body: Any, *, now: float) -> tuple[str, dict[str, Any]]:
    """``POST /api/batches`` → (batch id, record 0 body)."""
    if not isinstance(body, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    allowed = {"id", "product", "brand", "origin", "at", "place", "thresholds", "room"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise invalid(extra[0], "not a field of a batch")
    batch = body.get("id")
    if not isinstance(batch, str) or not valid_id(batch):
        raise invalid("id", "1-64 of A-Z a-z 0-9 _ . : -")
    room = body.get("room")
    if room is not None and (not isinstance(room, str) or not valid_id(room)):
        raise invalid("room", "a room id")
    brand = _text(body.get("brand"), "brand", 80)
    data: dict[str, Any] = {
        "product": _text(body.get("product"), "product", 80),
        "brand": brand,
        "origin": _text(body.get("origin"), "origin", 120),
        "thresholds": series.parse_thresholds(body.get("thresholds")),
    }
    if room is not None:
        data["room"] = room
    place = body.get("place") or {"name": data["origin"]}
    record = {
        "type": EventType.REGISTERED.value,
        "at": check_time(body.get("at", now), "at", now=now, past_s=EVENT_PAST_S),
        "place": _place(place),
        "actor": brand,
        "data": data,
    }
    return batch, record


def check_follows(previous: list[dict[str, Any]], record: dict[str, Any]) -> None:
    """Refuse with ``out_of_order`` an event that cannot follow the chain so far."""
    kind = EventType(record["type"])
    last = previous[-1]
    if record["at"] < last["at"]:
        raise LivecoreError(
            ErrorCode.OUT_OF_ORDER,
            f"at: {record['at']} is before the previous event ({last['type']} at {last['at']})",
        )
    stage = max(STAGE[EventType(r["type"])] for r in previous)
    if kind in ONCE and any(r["type"] == kind.value for r in previous):
        raise LivecoreError(ErrorCode.OUT_OF_ORDER, f"type: the batch is already {kind.value}")
    if kind is EventType.TESTED and stage >= STAGE[EventType.HARVESTED]:
        return
    if STAGE[kind] < stage:
        raise LivecoreError(
            ErrorCode.OUT_OF_ORDER, f"type: {kind.value} cannot follow {last['type']}"
        )


def with_report(record: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """A ``tested`` record with its report's size, type and name next to the hash."""
    data = dict(record["data"])
    data["report"] = {"sha256": report["sha256"], "size": report["size"], "type": report["type"]}
    return {**record, "data": data}


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch as its first record says, and where its life stands."""
    first = records[0]
    return {
        "id": first["batch"],
        "product": first["data"]["product"],
        "brand": first["data"]["brand"],
        "origin": first["data"]["origin"],
        "thresholds": first["data"].get("thresholds", {}),
        "registered_at": first["at"],
        "stage": records[-1]["type"],
        "events": len(records),
        "tested": [r["data"]["report"] for r in records if r["type"] == EventType.TESTED.value],
    }
