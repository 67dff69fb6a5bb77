"""Validation of create-room bodies."""

from __future__ import annotations

import pytest

from livecore import rooms
from livecore.errors import ErrorCode, LivecoreError

NOW = 1_800_000_000.0


def test_valid_room() -> None:
    """Fields are trimmed, times parsed, status starts scheduled."""
    room = rooms.new_room(
        {
            "id": "r1",
            "title": "  Peaches  ",
            "store": "Shop",
            "starts_at": "2027-01-15T08:00:00+08:00",
        },
        host="h",
        now=NOW,
    )
    assert room.title == "Peaches"
    assert room.public()["starts_at"] == "2027-01-15T00:00:00Z"
    assert room.starts_at == 1_799_971_200
    assert room.status is rooms.RoomStatus.SCHEDULED


def test_hash_round_trip() -> None:
    """A room survives its Redis hash form."""
    room = rooms.new_room({"id": "r1", "title": "t", "store": "s"}, host="h", now=NOW)
    assert rooms.Room.from_hash(room.to_hash()) == room


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t", "store": "s"}, "id"),
        ({"id": "has space", "title": "t", "store": "s"}, "id"),
        ({"id": "r", "store": "s"}, "title"),
        ({"id": "r", "title": "x" * 121, "store": "s"}, "title"),
        ({"id": "r", "title": "t", "store": ""}, "store"),
        ({"id": "r", "title": "t", "store": "s", "starts_at": "tomorrow"}, "starts_at"),
        ({"id": "r", "title": "t", "store": "s", "starts_at": "2027-01-01T00:00:00"}, "starts_at"),
        ({"id": "r", "title": "t", "store": "s", "starts_at": True}, "starts_at"),
        ({"id": "r", "title": "t", "store": "s", "starts_at": 1e12}, "starts_at"),
        ({"id": "r", "title": "t", "store": "s", "owner": "x"}, "owner"),
    ],
)
def test_invalid_fields_are_named(body: dict[str, object], field: str) -> None:
    """Each bad field is refused with invalid_field and its name in the message."""
    with pytest.raises(LivecoreError) as info:
        rooms.new_room(body, host="h", now=NOW)
    assert info.value.code is ErrorCode.INVALID_FIELD
    assert info.value.message.startswith(field)


def test_body_must_be_object() -> None:
    """A JSON list is bad_request."""
    with pytest.raises(LivecoreError) as info:
        rooms.new_room([1, 2], host="h", now=NOW)
    assert info.value.code is ErrorCode.BAD_REQUEST
