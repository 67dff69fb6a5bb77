"""Sensor series of a batch: kinds with names, units and physical ranges;
readings checked; per-minute aggregates downsampled for a chart (pure).

A series is one device's readings of one kind (``<device>/<kind>``). Values
are stored as integers in the kind's step (0.01 °C, 0.1 %, ...) so that an
aggregate slot (count, min, max, sum) takes 10 bytes; see
livecore/store/series.py for the layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import valid_id

#: Readings in one POST (a logger uploading what it buffered while offline).
MAX_READINGS = 500
#: A reading may be this old (a logger offline for a month) ...
READING_PAST_S = 35 * 86400
#: ... or this far ahead of the server (clock skew).
READING_FUTURE_S = 60
#: Series (device × kind) per batch.
MAX_SERIES = 16
#: Chart points per series at most (a phone is ~400 px wide).
MAX_POINTS = 480


@dataclass(frozen=True, slots=True)
class Kind:
    """What a series measures: names people read, the unit, the physical range,
    the storage step, and the default alert band (None: no alert)."""

    zh: str
    en: str
    unit: str
    lo: float
    hi: float
    step: float
    alert: tuple[float, float] | None = None


KINDS: dict[str, Kind] = {
    "cold_chain_c": Kind("冷链温度", "Cold-chain temperature", "°C", -40, 60, 0.01, (0.0, 8.0)),
    "air_temp_c": Kind("气温", "Air temperature", "°C", -50, 70, 0.01),
    "soil_temp_c": Kind("土壤温度", "Soil temperature", "°C", -40, 80, 0.01),
    "humidity_pct": Kind("相对湿度", "Relative humidity", "%", 0, 100, 0.01),
    "soil_moisture_pct": Kind("土壤湿度", "Soil moisture", "%", 0, 100, 0.01),
    "workshop_temp_c": Kind("车间温度", "Workshop temperature", "°C", -30, 60, 0.01),
    "workshop_humidity_pct": Kind("车间湿度", "Workshop humidity", "%", 0, 100, 0.01),
    "soil_ph": Kind("土壤酸碱度", "Soil pH", "pH", 0, 14, 0.001),
    "co2_ppm": Kind("二氧化碳", "CO₂", "ppm", 0, 20000, 1),
    "light_lux": Kind("光照", "Light", "lx", 0, 200000, 10),
    "activity_steps": Kind("牲畜活动", "Livestock activity", "步/时", 0, 30000, 1),
}


def kind_of(name: str) -> Kind:
    kind = KINDS.get(name)
    if kind is None:
        known = ", ".join(sorted(KINDS))
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"kind: {name!r} is not one of {known}")
    return kind


def describe(name: str) -> dict[str, Any]:
    """A kind as pages show it."""
    k = KINDS[name]
    return {"kind": name, "zh": k.zh, "en": k.en, "unit": k.unit}


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_thresholds(value: Any) -> dict[str, list[float]]:
    """``{kind: [lo, hi]}``: the band outside which a reading is an excursion.
    Kinds with a default band (cold chain 0–8 °C) get it unless given."""
    value = {} if value is None else value
    if not isinstance(value, dict) or len(value) > len(KINDS):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "thresholds: must be {kind: [lo, hi]}")
    out = {name: [k.alert[0], k.alert[1]] for name, k in KINDS.items() if k.alert}
    for name, band in value.items():
        kind = kind_of(name)
        ok = isinstance(band, list) and len(band) == 2 and all(_num(x) for x in band)
        if not ok or not kind.lo <= band[0] < band[1] <= kind.hi:
            raise LivecoreError(
                ErrorCode.INVALID_FIELD,
                f"thresholds.{name}: [lo, hi] with {kind.lo:g} <= lo < hi <= {kind.hi:g}",
            )
        out[name] = [round(band[0], 3), round(band[1], 3)]
    return out


@dataclass(frozen=True, slots=True)
class Reading:
    """A checked reading: series id, kind, time, value in storage steps, excursion."""

    series: str
    kind: str
    at: int
    units: int
    excursion: bool


def to_units(kind: Kind, value: float) -> int:
    return round(value / kind.step)


def from_units(kind: Kind, units: float) -> float:
    return round(units * kind.step, 6)


def parse_readings(
    body: Any, *, device: str, now: float, thresholds: dict[str, list[float]], not_before: float
) -> list[Reading]:
    """``{"readings": [{kind, value, at?}, ...]}`` from ``device`` → checked readings.

    Refuses the whole post when one reading is bad: ``out_of_range`` (outside
    the kind's physical range), ``bad_timestamp`` (future, or older than
    35 days or than the batch), ``invalid_field`` (unknown kind, not a number).
    """
    if not isinstance(body, dict) or set(body) != {"readings"}:
        raise LivecoreError(ErrorCode.BAD_REQUEST, 'body must be {"readings": [...]}')
    readings = body["readings"]
    if not isinstance(readings, list) or not 1 <= len(readings) <= MAX_READINGS:
        raise LivecoreError(
            ErrorCode.INVALID_FIELD, f"readings: must be a list of 1-{MAX_READINGS} readings"
        )
    oldest = max(now - READING_PAST_S, not_before)
    out = []
    for i, reading in enumerate(readings):
        name = f"readings[{i}]"
        if not isinstance(reading, dict) or not set(reading) <= {"kind", "value", "at"}:
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}: must be {{kind, value, at?}}")
        kind_name = reading.get("kind")
        if not isinstance(kind_name, str) or kind_name not in KINDS:
            raise LivecoreError(
                ErrorCode.INVALID_FIELD, f"{name}.kind: one of {', '.join(sorted(KINDS))}"
            )
        kind, value, at = KINDS[kind_name], reading.get("value"), reading.get("at", now)
        if not isinstance(value, int | float) or not _num(value):
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}.value: must be a number")
        if not kind.lo <= value <= kind.hi:
            raise LivecoreError(
                ErrorCode.OUT_OF_RANGE,
                f"{name}.value: {value} {kind.unit} is outside the physical range of "
                f"{kind_name} ({kind.lo:g}..{kind.hi:g} {kind.unit})",
            )
        if not isinstance(at, int | float) or not _num(at):
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}.at: must be Unix seconds")
        if at > now + READING_FUTURE_S:
            raise LivecoreError(ErrorCode.BAD_TIMESTAMP, f"{name}.at: {int(at)} is in the future")
        if at < oldest:
            raise LivecoreError(
                ErrorCode.BAD_TIMESTAMP,
                f"{name}.at: {int(at)} is older than 35 days or than the batch",
            )
        band = thresholds.get(kind_name)
        excursion = band is not None and not band[0] <= value <= band[1]
        out.append(
            Reading(f"{device}/{kind_name}", kind_name, int(at), to_units(kind, value), excursion)
        )
    return out


def valid_series_id(sid: str) -> bool:
    device, _, kind = sid.rpartition("/")
    return kind in KINDS and valid_id(device)


# Levels of aggregates: name, seconds per slot.
LEVELS = (("m", 60), ("h", 3600), ("d", 86400))


def pick_level(span_s: float, points: int = MAX_POINTS) -> tuple[str, int]:
    """The finest level whose slots over ``span_s`` stay within a few thousand."""
    for name, width in LEVELS:
        if span_s / width <= 8 * points:
            return name, width
    return LEVELS[-1]


def downsample(
    slots: list[tuple[int, int, int, int, int]], kind: Kind, *, start: int, end: int,
    points: int = MAX_POINTS,
) -> list[list[float]]:  # fmt: skip
    """Aggregate slots ``(t, n, min, max, sum)`` into at most ``points`` buckets
    ``[t, min, mean, max]`` between ``start`` and ``end``: a bucket keeps the
    extreme values of its slots, so a short excursion stays visible."""
    if not slots:
        return []
    width = max(1, math.ceil((end - start) / points))
    buckets: dict[int, list[int]] = {}
    for t, n, lo, hi, total in slots:
        if n == 0:
            continue
        b = buckets.get((t - start) // width)
        if b is None:
            buckets[(t - start) // width] = [t, n, lo, hi, total]
        else:
            b[1] += n
            b[2] = min(b[2], lo)
            b[3] = max(b[3], hi)
            b[4] += total
    return [
        [b[0], from_units(kind, b[2]), from_units(kind, b[4] / b[1]), from_units(kind, b[3])]
        for _, b in sorted(buckets.items())
    ]


def merge_excursions(minutes: list[int], *, gap: int = 1) -> list[tuple[int, int]]:
    """Sorted excursion minutes → [(first minute, last minute)] runs."""
    runs: list[tuple[int, int]] = []
    for m in sorted(set(minutes)):
        if runs and m - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], m)
        else:
            runs.append((m, m))
    return runs
