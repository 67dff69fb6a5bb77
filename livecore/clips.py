"""Clips: what a highlight becomes and what anyone may read about it (pure rules).

A clip's public id is ``<room>~<clip>``: the room id (which never contains
``~``) and 12 hex digits, so a share link names its room without a lookup.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from livecore.tokens import valid_id

CLIP_HEX = re.compile(r"^[0-9a-f]{12}$")
MAX_CLIPS_PER_ROOM = 50
TITLES = {
    "mark": "主播精选时刻",
    "product": "商品讲解",
    "burst": "直播间高能片段",
    "explain": "主播讲解",
}


def public_id(room: str, clip: str) -> str:
    return f"{room}~{clip}"


def parse_public_id(value: str) -> tuple[str, str] | None:
    """``(room, clip)`` of a public clip id, or None if it is not one."""
    room, sep, clip = value.rpartition("~")
    if not sep or not valid_id(room) or not CLIP_HEX.match(clip):
        return None
    return room, clip


def title_for(kind: str, product: str | None) -> str:
    base = TITLES.get(kind, TITLES["burst"])
    return f"{product} · {base}" if product else base


@dataclass(frozen=True, slots=True)
class Clip:
    """A cut clip. ``start`` is stream seconds, ``created_at`` Unix seconds."""

    id: str
    room: str
    stream: str
    kind: str
    title: str
    start: float
    duration: float
    created_at: int
    product: str | None = None
    reason: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Clip:
        data = json.loads(raw)
        return cls(**data)

    def public(self) -> dict[str, Any]:
        """The clip as REST and ``clip_ready`` show it (URLs relative to the node)."""
        pid = public_id(self.room, self.id)
        return {
            "id": pid,
            "room": self.room,
            "title": self.title,
            "product": self.product,
            "kind": self.kind,
            "reason": self.reason,
            "start": round(self.start, 3),
            "duration": round(self.duration, 3),
            "created_at": self.created_at,
            "video": f"/media/clips/{pid}.mp4",
            "thumbnail": f"/media/clips/{pid}.jpg",
            "share": f"/c/{pid}",
        }
