"""Cards the host pins in the room: product, traceability, testimonial (pure checks).

Money is integer cents (分), never a float. URLs must be http(s). Readings are
(time, value) pairs such as cold-chain temperatures.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from livecore.errors import ErrorCode, LivecoreError

MAX_READINGS = 50


class CardKind(StrEnum):
    PRODUCT = "product"
    TRACE = "trace"
    TESTIMONIAL = "testimonial"


_FIELDS: dict[CardKind, frozenset[str]] = {
    CardKind.PRODUCT: frozenset({"kind", "name", "price_cents", "image_url", "stock"}),
    CardKind.TRACE: frozenset({"kind", "batch", "origin", "report_url", "readings"}),
    CardKind.TESTIMONIAL: frozenset({"kind", "author", "text"}),
}


def _invalid(field: str, why: str) -> LivecoreError:
    return LivecoreError(ErrorCode.INVALID_FIELD, f"{field}: {why}")


def _str(d: dict[str, Any], field: str, limit: int, *, required: bool = True) -> None:
    value = d.get(field)
    if value is None and not required:
        return
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= limit:
        raise _invalid(field, f"required, 1-{limit} characters")
    d[field] = value.strip()


def _int(d: dict[str, Any], field: str, hi: int, *, required: bool = True) -> None:
    value = d.get(field)
    if value is None and not required:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise _invalid(field, f"required, an integer 0..{hi}")


def _url(d: dict[str, Any], field: str, *, required: bool = True) -> None:
    _str(d, field, 500, required=required)
    value = d.get(field)
    if value is not None and not value.startswith(("https://", "http://")):
        raise _invalid(field, "must be an http(s) URL")


def _readings(d: dict[str, Any]) -> None:
    readings = d.get("readings")
    if readings is None:
        return
    if not isinstance(readings, list) or len(readings) > MAX_READINGS:
        raise _invalid("readings", f"must be a list of at most {MAX_READINGS} [time, value]")
    for i, pair in enumerate(readings):
        ok = (
            isinstance(pair, list)
            and len(pair) == 2
            and all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in pair
            )
        )
        if not ok:
            raise _invalid(f"readings[{i}]", "must be [unix time, number]")


def validate_card(d: dict[str, Any]) -> None:
    """Check a card in place (strings trimmed); raise LivecoreError naming the bad field."""
    try:
        kind = CardKind(str(d.get("kind")))
    except ValueError:
        raise _invalid("kind", "must be product, trace or testimonial") from None
    extra = set(d) - _FIELDS[kind]
    if extra:
        raise _invalid(sorted(extra)[0], f"not a field of a {kind.value} card")
    if kind is CardKind.PRODUCT:
        _str(d, "name", 80)
        _int(d, "price_cents", 100_000_000)
        _url(d, "image_url", required=False)
        _int(d, "stock", 1_000_000, required=False)
    elif kind is CardKind.TRACE:
        _str(d, "batch", 64)
        _str(d, "origin", 120)
        _url(d, "report_url", required=False)
        _readings(d)
    else:
        _str(d, "author", 40)
        _str(d, "text", 300)
