"""Rooms: what a host creates and what anyone may read about it (pure rules)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from livecore.errors import ErrorCode, LivecoreError
from livecore.fields import invalid, text
from livecore.tokens import valid_id

TITLE_MAX = 120
STORE_MAX = 80


class RoomStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Room:
    """A live room; ``starts_at`` and ``created_at`` are Unix seconds."""

    id: str
    title: str
    store: str
    starts_at: int
    host: str
    created_at: int
    status: RoomStatus = RoomStatus.SCHEDULED
    #: URL path of the last stream's replay (回放) once it is built, else "".
    replay: str = ""

    def public(self) -> dict[str, Any]:
        """The state anyone may read (times as ISO 8601 UTC; ``replay`` null until built)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["replay"] = self.replay or None
        data["starts_at"] = iso(self.starts_at)
        data["created_at"] = iso(self.created_at)
        return data

    def to_hash(self) -> dict[str, str]:
        """Flat string fields for a Redis hash."""
        return {
            k: str(v.value if isinstance(v, RoomStatus) else v) for k, v in asdict(self).items()
        }

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Room:
        return cls(
            id=data["id"],
            title=data["title"],
            store=data["store"],
            starts_at=int(data["starts_at"]),
            host=data["host"],
            created_at=int(data["created_at"]),
            status=RoomStatus(data.get("status", RoomStatus.SCHEDULED.value)),
            replay=data.get("replay", ""),
        )


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def parse_time(value: Any, field: str) -> int:
    """Unix seconds from an int/float or an ISO 8601 string with a time zone."""
    if isinstance(value, bool):
        raise invalid(field, "must be Unix seconds or an ISO 8601 time")
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) >= 4_102_444_800:
            raise invalid(field, "out of range")
        ts = int(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid(field, f"{value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise invalid(field, "ISO 8601 time needs a time zone (e.g. Z or +08:00)")
        ts = int(parsed.timestamp())
    else:
        raise invalid(field, "required, Unix seconds or an ISO 8601 time")
    if not 0 < ts < 4_102_444_800:  # before 2100-01-01
        raise invalid(field, "out of range")
    return ts


def new_room(body: Any, *, host: str, now: float) -> Room:
    """Validate a create-room request body (a JSON object) into a Room."""
    if not isinstance(body, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    room_id = body.get("id")
    if not isinstance(room_id, str) or not valid_id(room_id):
        raise invalid("id", "required, 1-64 characters of A-Z a-z 0-9 _ . : -")
    unknown = set(body) - {"id", "title", "store", "starts_at"}
    if unknown:
        raise invalid(sorted(unknown)[0], "unknown field")
    starts = body.get("starts_at")
    return Room(
        id=room_id,
        title=text(body, "title", TITLE_MAX),
        store=text(body, "store", STORE_MAX),
        starts_at=int(now) if starts is None else parse_time(starts, "starts_at"),
        host=host,
        created_at=int(now),
    )
