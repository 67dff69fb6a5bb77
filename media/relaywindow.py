"""The frames a relay holds for its viewers, and the rule that moves a viewer through them.

A ``FrameWindow`` keeps each published frame once, numbered by a sequence
number: the current GOP (from the last keyframe, at most ``max_gop_frames`` /
``max_gop_bytes``; a longer GOP is not cached) plus the last
``max_lag_frames`` frames. A viewer is a ``ViewerPosition`` into it, so a
stalled viewer holds no frames.

``take(position)`` is the lag rule of ``media.relay``: a viewer's first frame
is a keyframe (the cached GOP's, else it waits for the next one); a viewer
more than ``max_lag_frames`` behind the newest frame (beyond the backlog it
(re)started with), or behind the window, skips to the cached keyframe if it
is newer than its position, else waits for the next keyframe. Pure: no event
loop, no clock; the relay asks the publisher for keyframes.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from media.relaystate import RelayLimits, RelayStats, ViewerPosition

if TYPE_CHECKING:
    from media.packetise import Payloads
    from media.passthrough import EncodedPacket


@dataclass(slots=True)
class Slot:
    """One published frame in the window."""

    seq: int
    packet: EncodedPacket
    keyframe: bool
    size: int
    arrived: float = 0.0
    """Wall-clock time it was published (for sender reports: NTP ↔ RTP pairs)."""
    payloads: Payloads | None = None
    history_index: int = -1
    """Where the lean forwarder put its packets in its shared history (-1: not yet)."""


class Skip(Enum):
    """What ``FrameWindow.take`` did to a viewer that fell behind."""

    NONE = "none"
    TO_CACHED_KEYFRAME = "to_cached_keyframe"
    """It jumped to the cached GOP's keyframe and goes on from there."""
    TO_NEXT_KEYFRAME = "to_next_keyframe"
    """It waits for a keyframe newer than the newest frame (one should be asked for)."""


class FrameWindow:
    """The shared window of one relay (see the module doc); counts into ``stats``."""

    def __init__(self, limits: RelayLimits, stats: RelayStats) -> None:
        self._limits = limits
        self._stats = stats
        self._slots: deque[Slot] = deque()
        self._first_seq = 0
        self._head = -1
        self._gop_start: int | None = None
        self._gop_bytes = 0

    def append(self, packet: EncodedPacket, keyframe: bool, arrived: float) -> Slot:
        """Add the next frame; drop what no viewer may still need."""
        seq = self._head + 1
        slot = Slot(seq, packet, keyframe, packet.size, arrived)
        self._slots.append(slot)
        self._head = seq
        stats = self._stats
        stats.frames_in += 1
        stats.bytes_in += packet.size
        limits = self._limits
        if keyframe:
            stats.keyframes_in += 1
            self._gop_start, self._gop_bytes = seq, 0
        if self._gop_start is not None:
            self._gop_bytes += packet.size
            too_long = seq - self._gop_start + 1 > limits.max_gop_frames
            if too_long or self._gop_bytes > limits.max_gop_bytes:
                self._gop_start = None
                stats.gop_overflows += 1
        keep_from = seq - limits.max_lag_frames
        if self._gop_start is not None:
            keep_from = min(keep_from, self._gop_start)
        while self._first_seq < keep_from:
            self._slots.popleft()
            self._first_seq += 1
        return slot

    def gop_slots(self) -> list[Slot]:
        """The cached GOP, keyframe first (empty without one): what a new viewer starts with."""
        gop = self._gop_start
        if gop is None:
            return []
        return list(itertools.islice(self._slots, gop - self._first_seq, None))

    def take(self, pos: ViewerPosition) -> tuple[Slot | None, Skip]:
        """The next frame at ``pos`` (None: it must wait), moving ``pos``; and any skip."""
        head = self._head
        skip = Skip.NONE
        if pos.next_seq is None:
            gop = self._gop_start
            if gop is None or gop < pos.min_key_seq:
                return None, skip
            pos.next_seq, pos.start_head = gop, head
        else:
            live_lag = head - max(pos.next_seq - 1, pos.start_head)
            if pos.next_seq < self._first_seq or live_lag > self._limits.max_lag_frames:
                gop = self._gop_start
                if gop is not None and gop >= pos.next_seq:
                    pos.next_seq, pos.start_head = gop, head
                    skip = Skip.TO_CACHED_KEYFRAME
                else:
                    pos.next_seq, pos.min_key_seq = None, head + 1
                    return None, Skip.TO_NEXT_KEYFRAME
        if pos.next_seq > head:
            return None, skip
        slot = self._slots[pos.next_seq - self._first_seq]
        pos.next_seq += 1
        return slot, skip

    def clear(self) -> None:
        """Let go of every frame (the relay closed)."""
        self._slots.clear()

    @property
    def head(self) -> int:
        """Sequence number of the newest frame (-1 before the first)."""
        return self._head

    @property
    def has_keyframe(self) -> bool:
        """True when a GOP is cached."""
        return self._gop_start is not None

    @property
    def frames(self) -> int:
        return len(self._slots)

    @property
    def bytes(self) -> int:
        return sum(slot.size for slot in self._slots)
