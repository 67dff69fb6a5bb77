"""Key names. Every key of a room carries the room id as a hash tag
(``{room}``) so that all of a room's keys live in one Redis Cluster slot and
one Lua script may touch them together. Indexes across rooms are in
:mod:`livecore.store.index`."""

from __future__ import annotations

PREFIX = "lc"


def room(room_id: str, part: str) -> str:
    """``lc:{<room>}:<part>``"""
    return f"{PREFIX}:{{{room_id}}}:{part}"
