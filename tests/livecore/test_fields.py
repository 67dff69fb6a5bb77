"""The field-check vocabulary: one error code, messages that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from livecore import fields
from livecore.errors import ErrorCode, LivecoreError


def test_text_trims_and_writes_back() -> None:
    """A string is trimmed in place and returned."""
    data: dict[str, Any] = {"name": "  eggs "}
    assert fields.text(data, "name", 10) == "eggs" and data["name"] == "eggs"
    assert fields.optional_text({}, "name", 10) is None


@pytest.mark.parametrize(
    ("check", "data"),
    [
        (lambda d: fields.text(d, "f", 3), {"f": "four"}),
        (lambda d: fields.text(d, "f", 3), {"f": 1}),
        (lambda d: fields.integer(d, "f", 0, 5), {"f": True}),
        (lambda d: fields.integer(d, "f", 0, 5), {"f": 6}),
        (lambda d: fields.integer(d, "f", 0, 5, default=1), {"f": None}),
        (lambda d: fields.number(d, "f"), {"f": "1"}),
        (lambda d: fields.optional_url(d, "f"), {"f": "ftp://x"}),
    ],
)
def test_refusals_name_the_field(check: Any, data: dict[str, Any]) -> None:
    """Every refusal is invalid_field and starts with the field's name."""
    with pytest.raises(LivecoreError) as info:
        check(data)
    assert info.value.code is ErrorCode.INVALID_FIELD and info.value.message.startswith("f: ")


def test_integer_default_when_missing() -> None:
    """A missing field takes the default."""
    assert fields.integer({}, "f", 0, 9, default=5) == 5
    assert fields.optional_integer({}, "f", 0, 9) is None
