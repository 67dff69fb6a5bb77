"""Reservations (预约): the calendar entry a reserved viewer adds (pure).

:func:`ics` writes one VEVENT (RFC 5545): the room's title at its scheduled
start, one hour long, with the room's link; text is escaped (§3.3.11) and
lines folded at 75 octets (§3.1).
"""

from __future__ import annotations

from datetime import UTC, datetime

from livecore.rooms import Room

DURATION = "PT1H"
#: Minutes before the start the calendar reminds (VALARM).
REMIND_MIN = 10


def _stamp(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def _escape(value: str) -> str:
    out = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return out.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _fold(line: str) -> list[str]:
    """Split ``line`` into 75-octet pieces, continuations starting with a space."""
    pieces: list[str] = []
    current = ""
    for ch in line:
        limit = 75 if not pieces else 74
        if len((current + ch).encode()) > limit:
            pieces.append(current)
            current = ch
        else:
            current += ch
    pieces.append(current)
    return [pieces[0], *(" " + p for p in pieces[1:])]


def ics(room: Room, url: str, now: int) -> str:
    """The ``text/calendar`` body for ``room`` (its page at ``url``)."""
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//livecore//reservation//ZH",
        "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "BEGIN:VEVENT",
        f"UID:{room.id}@livecore", f"DTSTAMP:{_stamp(now)}", f"DTSTART:{_stamp(room.starts_at)}",
        f"DURATION:{DURATION}", f"SUMMARY:{_escape(room.title)}",
        f"DESCRIPTION:{_escape(room.store + ' ' + url)}", f"URL:{url}",
        "BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{_escape(room.title)}",
        f"TRIGGER:-PT{REMIND_MIN}M", "END:VALARM", "END:VEVENT", "END:VCALENDAR",
    ]  # fmt: skip
    return "".join(piece + "\r\n" for line in lines for piece in _fold(line))
