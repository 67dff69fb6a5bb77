"""The writer's backlog over real socket transports: order, exactness, slices, bounds."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from signalling.hub.backlog import CLOCK_EVERY, MAX_ENTRIES, Backlog
from tests.waiting import eventually

LIMIT = 512 * 1024


@dataclass(eq=False)
class Conn:
    """A connection as the writer sees it: a real asyncio transport over a socket
    pair, the other end kept to read what was written."""

    transport: asyncio.Transport | None
    peer: socket.socket
    closing: bool = False
    closed_with: list[int] = field(default_factory=list)

    def close(self, code: int, reason: str = "") -> None:
        self.closed_with.append(code)
        self.closing = True

    def received(self) -> bytes:
        out = b""
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                return out
            if not chunk:
                return out
            out += chunk


@pytest.fixture
async def conns() -> AsyncIterator[list[Conn]]:
    loop = asyncio.get_running_loop()
    made: list[Conn] = []
    for _ in range(CLOCK_EVERY + 8):
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        made.append(Conn(transport, theirs))
    yield made
    for conn in made:
        assert conn.transport is not None
        conn.transport.abort()
        conn.peer.close()


async def received(conn: Conn, size: int) -> bytes:
    """What ``conn``'s peer got, once ``size`` bytes are there (the transport may
    still hold the tail for the loop to send)."""
    got = bytearray()

    def enough() -> bool:
        got.extend(conn.received())
        return len(got) >= size

    await eventually(enough, within=2.0, step=0.01, what=f"{size} bytes")
    return bytes(got)


def test_an_empty_tick_is_no_entry() -> None:
    """A tick with no batch and no group frame adds nothing to write."""
    backlog = Backlog()
    backlog.push(None, None)
    backlog.push(None, {})
    assert backlog.head == 0 and not backlog.pending


async def test_every_connection_gets_every_entry_once_in_order(conns: list[Conn]) -> None:
    """A pass cut by its deadline goes on where it stopped; an entry taken meanwhile
    reaches the rest in the same write and the first ones in the next pass."""
    backlog = Backlog()
    for conn in conns:
        backlog.add(conn)
    backlog.push(b"one;", None)
    assert backlog.start_pass()
    written, slow = backlog.write(LIMIT, deadline=time.perf_counter())  # one clock step
    assert (written, slow) == (CLOCK_EVERY, [])
    backlog.push(b"two;", None)
    assert not backlog.start_pass()  # the pass under way goes on first
    written, _ = backlog.write(LIMIT, deadline=None)
    assert written == len(conns) - CLOCK_EVERY and not backlog.in_pass
    assert backlog.start_pass()
    written, _ = backlog.write(LIMIT, deadline=None)
    assert written == CLOCK_EVERY  # the rest had "two" already
    assert not backlog.pending
    for conn in conns:
        assert await received(conn, 8) == b"one;two;"


async def test_a_connection_added_mid_pass_starts_at_the_head(conns: list[Conn]) -> None:
    """Joining caught a connection up to what was taken: it gets only later entries."""
    backlog = Backlog()
    first, late = conns[0], conns[1]
    backlog.add(first)
    backlog.push(b"old;", None)
    backlog.start_pass()
    backlog.add(late)
    backlog.push(b"new;", None)
    backlog.write(LIMIT, deadline=None)
    backlog.start_pass()
    backlog.write(LIMIT, deadline=None)
    assert await received(first, 8) == b"old;new;"
    assert await received(late, 4) == b"new;"


async def test_group_frames_go_only_to_their_connections(conns: list[Conn]) -> None:
    """A frame for some connections is written after the tick's batch, to them only."""
    backlog = Backlog()
    a, b = conns[0], conns[1]
    backlog.add(a)
    backlog.add(b)
    backlog.push(b"batch1;", {a: b"group-a;"})
    backlog.push(None, {b: b"group-b;"})
    backlog.push(b"batch3;", None)
    backlog.start_pass()
    assert backlog.write(LIMIT, deadline=None) == (2, [])
    assert await received(a, 22) == b"batch1;group-a;batch3;"
    assert await received(b, 22) == b"batch1;group-b;batch3;"


async def test_a_removed_or_closing_connection_is_skipped(conns: list[Conn]) -> None:
    """Connections that left or are closing are not written to."""
    backlog = Backlog()
    gone, closing, fine = conns[0], conns[1], conns[2]
    for conn in (gone, closing, fine):
        backlog.add(conn)
    backlog.push(b"x", None)
    backlog.start_pass()
    backlog.discard(gone)
    closing.closing = True
    assert backlog.write(LIMIT, deadline=None) == (1, [])
    assert await received(fine, 1) == b"x"
    assert gone.received() == b"" and closing.received() == b""


async def test_a_connection_over_its_byte_limit_is_handed_back(conns: list[Conn]) -> None:
    """A client whose unsent bytes pass the limit is returned (to be closed, 4008)
    and not written to; the others are."""
    stalled, fine = conns[0], conns[1]
    assert stalled.transport is not None
    stalled.transport.write(b"\0" * (8 << 20))  # its peer reads nothing
    assert stalled.transport.get_write_buffer_size() > LIMIT
    backlog = Backlog()
    backlog.add(stalled)
    backlog.add(fine)
    backlog.push(b"x", None)
    backlog.start_pass()
    assert backlog.write(LIMIT, deadline=None) == (1, [stalled])


async def test_entries_are_dropped_once_every_connection_has_them(conns: list[Conn]) -> None:
    """The backlog holds what the pass under way may still write, not the past."""
    backlog = Backlog()
    for conn in conns:
        backlog.add(conn)
    for n in range(50):
        backlog.push(b"%d;" % n, None)
        if backlog.start_pass():
            backlog.write(LIMIT, deadline=None)
        assert len(backlog.entries) <= 2
    assert backlog.head == 50


def test_too_many_entries_end_the_pass() -> None:
    """Past MAX_ENTRIES the pass under way is finished without a deadline."""
    backlog = Backlog()
    for n in range(MAX_ENTRIES + 1):
        backlog.push(b"%d" % n, None)
    assert backlog.overfull
