"""A revocation reaches the websockets: close every connection of this node whose
current token a :class:`~livecore.killswitch.Kill` hits (close code ``4005``)."""

from __future__ import annotations

from collections.abc import Mapping

from livecore import wire
from livecore.killswitch import Kill
from signalling.hub.room import LocalRoom
from signalling.node.metrics import Metrics


def close_hit(rooms: Mapping[str, LocalRoom], kill: Kill, metrics: Metrics) -> int:
    """Close the hit connections (joined or joining); returns how many. A room's end
    closes no websocket: its members receive ``room_ended`` and stay."""
    if kill.ended and kill.user is None and kill.token_id is None and kill.role is None:
        return 0
    closed = 0
    for room in list(rooms.values()):  # a revocation is rare: every connection is looked at
        for conn in list(room.conns | room.joining):
            if conn.claims is not None and not conn.closing and kill.hits(conn.claims):
                conn.close(wire.CloseCode.REVOKED, "token_revoked: this token was revoked")
                closed += 1
    if closed:
        metrics.refusals.labels("ws_revoked").inc(closed)
    return closed
