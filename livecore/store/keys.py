"""Key names. Every key of a room carries the room id as a hash tag
(``{room}``) so that all of a room's keys live in one Redis Cluster slot and
one Lua script may touch them together."""

from __future__ import annotations

PREFIX = "lc"
ROOMS_INDEX = f"{PREFIX}:rooms"
#: Rooms that have orders (written by the hub, read by the webhook forwarder).
ORDER_ROOMS = f"{PREFIX}:orders:rooms"


def room(room_id: str, part: str) -> str:
    """``lc:{<room>}:<part>``"""
    return f"{PREFIX}:{{{room_id}}}:{part}"
