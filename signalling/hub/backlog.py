"""A room's frames taken and not yet written to every connection, and how far each got.

The broadcast tick takes a room's batch every ``tick_ms`` and appends it here;
the writer (:mod:`signalling.hub.ticker`) walks the room's connections in
passes, a slice of a few milliseconds at a time, and writes each connection
everything taken since its last visit as one ``send()``. So a tick never
waits for the previous tick's writes to end, the loop reads (the bus, Valkey
replies, requests) between slices instead of after ~110 ms of writes at
19,500 viewers, and a comment waits at most one tick for its batch plus one
pass for its socket.

Order and exactness: a connection's position (``pos``) is the sequence number
of the next entry it needs; it is written every entry from there to the head,
in order, and set to the head. A connection activated now starts at the head:
joining caught it up to ``room.flushed``, which covers every entry taken so
far. A pass visits the connections that were there when it started; one
activated later starts at the head and is in the next pass. After a pass that
started at head ``H`` every connection is at ``H`` or later, so the entries
before ``H`` are dropped at the start of the next pass: the backlog holds
at most two passes' worth of entries (bounded further by ``MAX_ENTRIES``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Writable(Protocol):
    """What the writer needs of a connection (a :class:`~signalling.hub.room.Member`)."""

    transport: asyncio.Transport | None
    closing: bool

    def close(self, code: int, reason: str = "") -> None: ...


#: One tick's frames: the room's batch (None when the tick had none) and
#: frames for some connections only (the group progress of their community).
Entry = tuple[bytes | None, dict[Writable, bytes] | None]

#: Entries past which the pass under way is finished at once (bounds memory).
MAX_ENTRIES = 256
#: Connections written between two looks at the clock.
CLOCK_EVERY = 32


class Backlog:
    """Entries a room has taken, the connections' positions, and the pass under way."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        #: Sequence number of ``entries[0]``.
        self.base = 0
        #: Connection → sequence number of the next entry it needs.
        self.pos: dict[Writable, int] = {}
        #: The connections of the pass under way, and the next one to visit.
        self.order: list[Writable] = []
        self.index = 0
        #: The head when the pass under way started, and when it started (perf_counter).
        self.pass_head = 0
        self.pass_started = 0.0
        #: Sequence number of the last entry with frames for some connections only.
        self._last_targeted = -1
        #: Frames of every entry from a position to the head, joined (broadcast-only runs).
        self._joined: dict[int, bytes] = {}

    @property
    def head(self) -> int:
        """Sequence number the next entry will get."""
        return self.base + len(self.entries)

    def add(self, conn: Writable) -> None:
        """``conn`` receives every entry taken from now on."""
        self.pos[conn] = self.head

    def discard(self, conn: Writable) -> None:
        self.pos.pop(conn, None)

    def push(self, frame: bytes | None, targeted: dict[Writable, bytes] | None) -> None:
        """Append one tick's frames (nothing when both are empty)."""
        if frame is None and not targeted:
            return
        if targeted:
            self._last_targeted = self.head
        self.entries.append((frame, targeted or None))
        self._joined.clear()

    @property
    def in_pass(self) -> bool:
        return self.index < len(self.order)

    @property
    def pending(self) -> bool:
        """True while some connection may not have every entry yet."""
        return self.in_pass or self.head > self.pass_head

    @property
    def overfull(self) -> bool:
        """Too many entries wait: the pass under way must end now."""
        return len(self.entries) > MAX_ENTRIES

    def start_pass(self) -> bool:
        """Begin a pass over the connections if an entry came since the last began.

        Every connection is at the last pass's head or past it (it was visited,
        or activated after that pass began), so older entries are dropped.
        """
        if self.in_pass or self.head <= self.pass_head:
            return False
        drop = self.pass_head - self.base
        if drop > 0:
            del self.entries[:drop]
            self.base = self.pass_head
            self._joined.clear()
        self.pass_head = self.head
        self.pass_started = time.perf_counter()
        self.order = list(self.pos)
        self.index = 0
        return True

    def data_for(self, conn: Writable, start: int) -> bytes:
        """The bytes ``conn`` gets for the entries from ``start`` to the head, in order."""
        first = start - self.base
        if start > self._last_targeted:
            joined = self._joined.get(start)
            if joined is None:
                joined = b"".join(f for f, _ in self.entries[first:] if f is not None)
                self._joined[start] = joined
            return joined
        parts: list[bytes] = []
        for frame, targeted in self.entries[first:]:
            if frame is not None:
                parts.append(frame)
            if targeted is not None and (extra := targeted.get(conn)) is not None:
                parts.append(extra)
        return b"".join(parts)

    def write(self, limit: int, deadline: float | None) -> tuple[int, list[Writable]]:
        """Visit connections of the pass under way until it ends or ``deadline``
        (perf_counter; None: to the end), writing each what it lacks in one write.

        Returns the frames written and the connections over ``limit`` bytes of
        unsent data, which the caller closes (4008); they are not written to.
        This is the node's hot loop (one iteration per viewer per pass).
        """
        order, pos, head = self.order, self.pos, self.head
        joined, last_targeted = self._joined, self._last_targeted
        i, end = self.index, len(order)
        written = 0
        slow: list[Writable] = []
        while i < end:
            stop = end if deadline is None else min(end, i + CLOCK_EVERY)
            for conn in order[i:stop]:
                start = pos.get(conn)
                if start is None or start >= head:
                    continue
                pos[conn] = head
                transport = conn.transport
                if transport is None or conn.closing:
                    continue
                if transport.get_write_buffer_size() > limit:
                    slow.append(conn)
                    continue
                data = joined.get(start) if start > last_targeted else None
                if data is None:
                    data = self.data_for(conn, start)
                if data:
                    transport.write(data)
                    written += 1
            i = stop
            if deadline is not None and time.perf_counter() >= deadline:
                break
        self.index = i
        if i >= end:
            self.order = []
            self.index = 0
        return written, slow

    def clear(self) -> None:
        """Forget everything (the room is gone)."""
        self.entries.clear()
        self.pos.clear()
        self.order = []
        self.index = 0
        self._joined.clear()
