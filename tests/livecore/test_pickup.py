"""Pickup codes (pure): derived, ten digits, typed loosely, unguessable without the secret."""

from __future__ import annotations

import pytest

from livecore.errors import LivecoreError
from livecore.pickup import code_for, normalise, shown

SECRET = b"s" * 32


def test_a_code_is_ten_digits_and_the_same_every_time() -> None:
    """The same order gets the same code; another order, secret or room another."""
    code = code_for(SECRET, "r1", "g1", "alice")
    assert len(code) == 10 and code.isdigit()
    assert code == code_for(SECRET, "r1", "g1", "alice")
    others = {
        code_for(SECRET, "r1", "g1", "bob"),
        code_for(SECRET, "r2", "g1", "alice"),
        code_for(SECRET, "r1", "g2", "alice"),
        code_for(b"t" * 32, "r1", "g1", "alice"),
    }
    assert code not in others and len(others) == 4


def test_codes_of_many_orders_do_not_collide() -> None:
    """10,000 buyers of one group buy: 10,000 different codes."""
    codes = {code_for(SECRET, "r1", "g1", f"u{i}") for i in range(10_000)}
    assert len(codes) == 10_000


def test_typed_codes_lose_their_spaces_and_dashes() -> None:
    """What the counter types is normalised; what is not ten digits is invalid_field."""
    assert normalise("0123 4567-89") == "0123456789"
    assert shown("0123456789") == "0123 4567 89"
    for bad in ("123", "0123456789a", "١٢٣٤٥٦٧٨٩٠", 123, None, "1" * 41):
        with pytest.raises(LivecoreError) as err:
            normalise(bad)
        assert err.value.message.startswith("code:")
