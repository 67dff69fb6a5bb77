"""A room's state read once from the store and shared by its visitors.

See :class:`Reading`; :func:`signalling.hub.snapshot.shared` takes and shares
one, :meth:`signalling.hub.room.LocalRoom.take_batch` keeps it current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from livecore.store.polls import Poll

#: Visitors of one room share a reading of its state for this long (seconds).
SHARE_S = 1.0
#: Events a reading collects before the next visitor takes a fresh one.
SHARE_EVENTS = 500
COMMENT = "comment"


@dataclass
class Reading:
    """The room-wide part of a snapshot, read once and shared by every visitor
    of the room for up to SHARE_S.

    ``offset`` is the history head it reflects. From the moment its reading
    starts, the room appends every event it flushes to ``events`` (those after
    ``offset`` are kept), so a visitor given this reading and those events is
    exactly at ``room.flushed`` however old the reading is. What events do not
    carry (likes, tallies, group progress, viewers) is laid over it from the
    node's fresher copy when the snapshot is built.
    """

    started: float
    offset: int = 0
    meta: dict[str, Any] | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    polls: list[Poll] = field(default_factory=list)
    room_state: dict[str, Any] = field(default_factory=dict)
    likes: int = 0
    groupbuys: list[dict[str, Any]] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)
    #: The room's latest flash sale (spec and state) and its coupons.
    flash: dict[str, Any] | None = None
    coupons: list[dict[str, Any]] = field(default_factory=list)
    #: Flushed events after ``offset`` (all flushed events while still reading).
    events: list[dict[str, Any]] = field(default_factory=list)
    #: (community, everyone) → {gb: {group: state}}, read on first need.
    groups: dict[tuple[str, bool], dict[str, Any]] = field(default_factory=dict)
    ready: bool = False
    #: More events came than a reading keeps (``events`` is then incomplete).
    overflowed: bool = False
    #: An event other than a comment came: new visitors take a fresh reading
    #: (comments are folded into a snapshot; other kinds are left to clients).
    outdated: bool = False

    def fresh(self, now: float) -> bool:
        """Whether a new visitor may be given this reading."""
        ready = self.ready and not self.overflowed and not self.outdated
        return ready and now - self.started < SHARE_S

    def collect(self, events: list[dict[str, Any]]) -> None:
        """Events the room just flushed."""
        if self.overflowed:
            return
        if self.ready:
            events = [e for e in events if e["o"] > self.offset]
        self.events.extend(events)
        if any(e.get("t") != COMMENT for e in events):
            self.outdated = True
        if len(self.events) > SHARE_EVENTS:
            self.overflowed = True
            self.events = []
