"""The one vocabulary of field checks (pure): every refusal is ``invalid_field``
with a message that starts with the field's name.

Used by the wire format (:mod:`livecore.wire`), cards, group-buy specs and
room bodies. Strings are trimmed and written back into the checked map.
"""

from __future__ import annotations

import math
from typing import Any

from livecore.errors import ErrorCode, LivecoreError


def invalid(field: str, why: str) -> LivecoreError:
    """``invalid_field`` naming ``field`` first."""
    return LivecoreError(ErrorCode.INVALID_FIELD, f"{field}: {why}")


def optional_text(data: dict[str, Any], field: str, limit: int) -> str | None:
    """A string of 1-``limit`` characters after trimming, or None when absent."""
    if data.get(field) is None:
        return None
    return text(data, field, limit)


def text(data: dict[str, Any], field: str, limit: int) -> str:
    """A required string of 1-``limit`` characters after trimming."""
    value = data.get(field)
    if not isinstance(value, str):
        raise invalid(field, "required, a string")
    value = value.strip()
    if not 1 <= len(value) <= limit:
        raise invalid(field, f"must be 1-{limit} characters")
    data[field] = value
    return value


def optional_integer(data: dict[str, Any], field: str, lo: int, hi: int) -> int | None:
    """An integer ``lo``..``hi``, or None when absent."""
    if data.get(field) is None:
        return None
    return integer(data, field, lo, hi)


def integer(
    data: dict[str, Any], field: str, lo: int, hi: int, *, default: int | None = None
) -> int:
    """A required integer ``lo``..``hi`` (booleans refused); ``default`` when the
    field is missing (a field present as nil is refused)."""
    value = data.get(field, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(field, "required, an integer")
    if not lo <= value <= hi:
        raise invalid(field, f"must be between {lo} and {hi}")
    return value


def number(data: dict[str, Any], field: str) -> float:
    """A required finite-or-not number (int or float, booleans refused)."""
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(field, "required, a number")
    return float(value)


def is_finite_number(value: Any) -> bool:
    """An int or float (not a boolean) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def optional_url(data: dict[str, Any], field: str, limit: int = 500) -> str | None:
    """An http(s) URL of at most ``limit`` characters, or None when absent."""
    value = optional_text(data, field, limit)
    if value is not None and not value.startswith(("https://", "http://")):
        raise invalid(field, "must be an http(s) URL")
    return value
