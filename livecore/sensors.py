"""Sensor readings a device posts into a room (soil temperature, humidity, cold chain)."""

from __future__ import annotations

import math
import re
from typing import Any

from livecore.errors import ErrorCode, LivecoreError

MAX_READINGS = 20
_KIND = re.compile(r"^[a-z0-9_]{1,40}$")


def _invalid(field: str, why: str) -> LivecoreError:
    return LivecoreError(ErrorCode.INVALID_FIELD, f"{field}: {why}")


def parse_readings(body: Any, *, now: float) -> list[dict[str, Any]]:
    """``{"readings": [{"kind", "value", "at"?}, ...]}`` → checked readings.

    ``kind`` is 1-40 of ``a-z 0-9 _`` (e.g. ``soil_temp_c``), ``value`` a
    finite number, ``at`` Unix seconds within a day of now (default now).
    """
    if not isinstance(body, dict) or set(body) != {"readings"}:
        raise LivecoreError(ErrorCode.BAD_REQUEST, 'body must be {"readings": [...]}')
    readings = body["readings"]
    if not isinstance(readings, list) or not 1 <= len(readings) <= MAX_READINGS:
        raise _invalid("readings", f"must be a list of 1-{MAX_READINGS} readings")
    out = []
    for i, reading in enumerate(readings):
        name = f"readings[{i}]"
        if not isinstance(reading, dict) or not set(reading) <= {"kind", "value", "at"}:
            raise _invalid(name, "must be {kind, value, at?}")
        kind, value, at = reading.get("kind"), reading.get("value"), reading.get("at", now)
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise _invalid(f"{name}.kind", "1-40 characters of a-z 0-9 _")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise _invalid(f"{name}.value", "must be a finite number")
        if isinstance(at, bool) or not isinstance(at, int | float) or abs(at - now) > 86_400:
            raise _invalid(f"{name}.at", "must be Unix seconds within a day of now")
        out.append({"kind": kind, "value": value, "at": int(at)})
    return out
