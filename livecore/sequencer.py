"""Ordering a room's durable events on one node (pure, no I/O).

Events reach a node over pub/sub, which may drop or (after a resubscribe)
repeat messages. The sequencer turns that stream into the exact sequence of
offsets: it drops what it already has, holds events that arrive after a
gap until the gap is filled from the room's history, and notices when the
history was reset (a new epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

#: Events held while a gap is being filled; past this the room resyncs.
MAX_HELD = 10_000


class Verdict(Enum):
    READY = "ready"  # events are in order: deliver what ``take`` returns
    DUPLICATE = "duplicate"  # already had it
    GAP = "gap"  # missing offsets: fetch ``gap`` from history, then ``fill``
    HELD = "held"  # kept until the gap being fetched is filled
    RESET = "reset"  # the epoch changed: every connection must resync


@dataclass
class Sequencer:
    """Tracks the highest contiguous offset a node holds for one room."""

    epoch: str | None
    #: Highest offset received in order (delivered or ready to deliver).
    offset: int
    _ready: list[tuple[int, bytes]] = field(default_factory=list)
    _held: dict[int, bytes] = field(default_factory=dict)
    gap: tuple[int, int] | None = None  # (after, upto) offsets being fetched

    def push(self, epoch: str, offset: int, payload: bytes) -> Verdict:
        """Take one event from the bus."""
        if self.epoch is None and offset == 1:
            self.epoch = epoch
        if epoch != self.epoch:
            if self.epoch is None:
                self.epoch = epoch  # history began while we were not looking
            else:
                return Verdict.RESET
        if offset <= self.offset or offset in self._held:
            return Verdict.DUPLICATE
        if offset == self.offset + 1 and self.gap is None:
            self.offset = offset
            self._ready.append((offset, payload))
            self._release()
            return Verdict.READY
        if len(self._held) >= MAX_HELD:
            return Verdict.RESET
        self._held[offset] = payload
        if self.gap is None:
            self.gap = (self.offset, min(self._held) - 1)
            return Verdict.GAP
        return Verdict.HELD

    def fill(self, events: list[tuple[int, bytes]]) -> bool:
        """Deliver the history that fills the gap; False if it could not be filled."""
        upto = self.gap[1] if self.gap is not None else self.offset
        for offset, payload in events:
            if offset > self.offset and offset not in self._held:
                self._held[offset] = payload
        self.gap = None
        self._release()
        if self._held:  # still missing something before what is held
            self.gap = (self.offset, min(self._held) - 1)
            return False
        if self.offset < upto:  # the history stopped short of the gap's end
            self.gap = (self.offset, upto)
            return False
        return True

    def behind(self, head: int) -> tuple[int, int] | None:
        """A gap to fetch when the room's head is past what we hold (lost pub/sub)."""
        if self.gap is None and head > self.offset:
            self.gap = (self.offset, head)
            return self.gap
        return None

    def take(self) -> list[tuple[int, bytes]]:
        """The in-order events not yet taken."""
        ready, self._ready = self._ready, []
        return ready

    def _release(self) -> None:
        while self.offset + 1 in self._held:
            self.offset += 1
            self._ready.append((self.offset, self._held.pop(self.offset)))
