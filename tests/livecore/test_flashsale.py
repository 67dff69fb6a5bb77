"""Flash-sale specs and states (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from livecore.errors import LivecoreError
from livecore.flashsale import FlashStatus, parse_spec, status_at

NOW = 1_900_000_000
OK = {"price_cents": 990, "stock": 100, "limit": 2, "countdown_s": 10, "duration_s": 300}


def test_spec_from_the_pinned_card() -> None:
    """The product is the pinned card's; the window starts after the countdown."""
    spec = parse_spec(dict(OK), "peach", 3990, now=NOW)
    assert (spec.product, spec.price_cents, spec.stock, spec.limit) == ("peach", 990, 100, 2)
    assert (spec.starts_at, spec.ends_at) == (NOW + 10, NOW + 310)
    bare = parse_spec({"price_cents": 1, "stock": 1, "duration_s": 10}, "p", None, now=NOW)
    assert (bare.limit, bare.starts_at) == (1, NOW)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price_cents": 3990}, "price_cents"),  # not below the card's price
        ({"price_cents": 0}, "price_cents"),
        ({"stock": 0}, "stock"),
        ({"stock": 100_001}, "stock"),
        ({"limit": 100}, "limit"),
        ({"countdown_s": -1}, "countdown_s"),
        ({"duration_s": 9}, "duration_s"),
        ({"duration_s": True}, "duration_s"),
        ({"stock": "5"}, "stock"),
    ],
)
def test_bad_specs_name_their_field(change: dict[str, Any], field: str) -> None:
    """Every refusal is invalid_field naming the field first."""
    with pytest.raises(LivecoreError) as info:
        parse_spec({**OK, **change}, "peach", 3990, now=NOW)
    assert info.value.code == "invalid_field" and info.value.message.startswith(field)


def test_states_follow_time_stock_and_stop() -> None:
    """Scheduled, open, sold out, ended: the end wins, then the stock, then the start."""
    spec = parse_spec(dict(OK), "peach", None, now=NOW)
    assert status_at(spec, 0, False, NOW) is FlashStatus.SCHEDULED
    assert status_at(spec, 0, False, NOW + 10) is FlashStatus.OPEN
    assert status_at(spec, 100, False, NOW + 20) is FlashStatus.SOLD_OUT
    assert status_at(spec, 5, False, NOW + 310) is FlashStatus.ENDED
    assert status_at(spec, 5, True, NOW + 20) is FlashStatus.ENDED
