"""The housekeeping beat's pure parts: keep-alive pings spread over the interval."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from livecore.config import Settings
from livecore.sequencer import Sequencer
from signalling.hub.context import Services
from signalling.hub.housekeeping import BEAT_S, Housekeeper
from signalling.hub.room import LocalRoom


class _Conn:
    """A joined connection that counts the pings it is sent."""

    def __init__(self) -> None:
        self.claims = None
        self.community = None
        self.transport = None
        self.closing = False
        self.last_heard = 0.0
        self.pings = 0

    def close(self, code: int, reason: str = "") -> None: ...

    def ping(self) -> None:
        self.pings += 1


class _Node:
    """What ping_slice reads of the node: its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def test_pings_are_spread_over_the_interval() -> None:
    """Over one ping interval every connection is pinged exactly once, and no beat
    pings more than a few times its share (no burst of 4,000 pings in one turn)."""
    settings = Settings(ws_ping_interval_s=20.0)
    room = LocalRoom("r", Sequencer("e", 0))
    conns = [_Conn() for _ in range(4000)]
    for conn in conns:
        room.activate(cast(Any, conn))
    keeper = Housekeeper({"r": room}, cast(Services, _Node(settings)), cast(Any, None))
    beats = round(settings.ws_ping_interval_s / BEAT_S)
    per_beat = []
    for beat in range(1, beats + 1):
        before = sum(c.pings for c in conns)
        keeper.ping_slice(beat)
        per_beat.append(sum(c.pings for c in conns) - before)
    assert Counter(c.pings for c in conns) == {1: 4000}
    assert max(per_beat) <= 3 * 4000 / beats, per_beat
