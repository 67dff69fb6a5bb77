"""A live room's lease: the time it ends at unless its host's stream renews it.

One scored index (:mod:`livecore.store.index`, ``leases``): room → the Unix
time its lease runs out. The node holding the host's stream (the origin)
renews it on every media beat to *now + margin + grace*; when the stream ends
it is set to *now + grace*. A node that dies renews nothing: its rooms' leases
lapse on their own, and every node's sweep ends a room whose lease lapsed and
whose host has no fresh origin anywhere (:mod:`signalling.services.lifecycle`).
No room's end depends on one process's memory.

The index is written outside the room's scripts: a crash between an end and
the removal of its lease leaves a lapsed entry, which the next sweep finds
already ended and drops.
"""

from __future__ import annotations

from livecore.store import index
from livecore.store.client import StoreClient


class RoomLeases:
    def __init__(self, redis: StoreClient) -> None:
        self.index = index.ScoredIndex(redis, index.LEASES)

    async def hold(self, room: str, until: float) -> None:
        """The room stays live until ``until`` (Unix seconds) unless renewed again."""
        await self.index.add(room, until)

    async def lapsed(self, now: float, limit: int = 100) -> list[str]:
        """Up to ``limit`` rooms whose lease ran out at or before ``now``, oldest first."""
        return await self.index.upto(now, limit)

    async def drop(self, *rooms: str) -> None:
        await self.index.remove(*rooms)
