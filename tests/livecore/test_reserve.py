"""The reservation's calendar entry (pure): RFC 5545 escaping, folding and times."""

from __future__ import annotations

from livecore.reserve import ics
from livecore.rooms import Room

ROOM = Room(id="r1", title="周六早市; 桃子, 李子\n新到", store="鲜果铺", starts_at=1_935_000_000,
            host="h", created_at=1_900_000_000)  # fmt: skip


def test_the_event_starts_at_the_rooms_time_with_a_reminder() -> None:
    """DTSTART in UTC, one hour, a display alarm 10 minutes before, CRLF lines."""
    body = ics(ROOM, "https://shop.example/y/r1", now=1_900_000_100)
    lines = body.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    assert "DTSTART:20310426T200000Z" in lines and "DURATION:PT1H" in lines
    assert "TRIGGER:-PT10M" in lines and "UID:r1@livecore" in lines


def test_text_is_escaped_and_long_lines_folded() -> None:
    """Semicolons, commas and newlines are escaped; no line is over 75 octets, and the
    folds unfold to the original line."""
    long_url = "https://shop.example/y/" + "r" * 200
    body = ics(ROOM, long_url, now=0)
    assert "SUMMARY:周六早市\\; 桃子\\, 李子\\n新到\r\n" in body
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    assert f"URL:{long_url}\r\n" in body.replace("\r\n ", "")
