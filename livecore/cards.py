"""Cards the host pins in the room: product, traceability, testimonial (pure checks).

Money is integer cents (分), never a float. URLs must be http(s). Readings are
(time, value) pairs such as cold-chain temperatures.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from livecore.fields import (
    integer,
    invalid,
    is_finite_number,
    optional_integer,
    optional_url,
    text,
)

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


def _readings(d: dict[str, Any]) -> None:
    readings = d.get("readings")
    if readings is None:
        return
    if not isinstance(readings, list) or len(readings) > MAX_READINGS:
        raise invalid("readings", f"must be a list of at most {MAX_READINGS} [time, value]")
    for i, pair in enumerate(readings):
        ok = isinstance(pair, list) and len(pair) == 2 and all(map(is_finite_number, pair))
        if not ok:
            raise invalid(f"readings[{i}]", "must be [unix time, number]")


def validate_card(d: dict[str, Any]) -> None:
    """Check a card in place (strings trimmed); raise LivecoreError naming the bad field."""
    try:
        kind = CardKind(str(d.get("kind")))
    except ValueError:
        raise invalid("kind", "must be product, trace or testimonial") from None
    extra = set(d) - _FIELDS[kind]
    if extra:
        raise invalid(sorted(extra)[0], f"not a field of a {kind.value} card")
    if kind is CardKind.PRODUCT:
        text(d, "name", 80)
        integer(d, "price_cents", 0, 100_000_000)
        optional_url(d, "image_url")
        optional_integer(d, "stock", 0, 1_000_000)
    elif kind is CardKind.TRACE:
        text(d, "batch", 64)
        text(d, "origin", 120)
        optional_url(d, "report_url")
        _readings(d)
    else:
        text(d, "author", 40)
        text(d, "text", 300)
