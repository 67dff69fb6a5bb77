"""The tick and the writer over real socket transports: slices, group frames, 4008."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgpack
import pytest

from livecore import wire
from livecore.config import Settings
from livecore.sequencer import Sequencer
from livecore.tokens import Claims, Role
from signalling.hub.backlog import CLOCK_EVERY
from signalling.hub.room import LocalRoom
from signalling.hub.ticker import Ticker
from signalling.node.metrics import Metrics


@dataclass(eq=False)
class Conn:
    """A room member over a real asyncio transport; its peer socket reads what came."""

    transport: asyncio.Transport | None
    peer: socket.socket
    community: str | None = None
    claims: Claims | None = field(default_factory=lambda: Claims(Role("viewer"), "r", "u", 0))
    closing: bool = False
    last_heard: float = 0.0
    closed_with: list[int] = field(default_factory=list)

    def close(self, code: int, reason: str = "") -> None:
        self.closed_with.append(code)
        self.closing = True

    def ping(self) -> None: ...

    async def frames(self, count: int) -> list[bytes]:
        """The next ``count`` websocket frames' payloads (server frames: unmasked)."""
        data = b""
        loop = asyncio.get_running_loop()
        for _ in range(300):
            # waits for the next bytes (a frame may come in several reads)
            data += await asyncio.wait_for(loop.sock_recv(self.peer, 1 << 20), 5.0)
            out, rest = [], data
            while len(rest) >= 2:
                size, head = rest[1] & 0x7F, 2
                if size == 126:
                    size, head = int.from_bytes(rest[2:4], "big"), 4
                if len(rest) < head + size:
                    break
                out.append(rest[head : head + size])
                rest = rest[head + size :]
            if len(out) >= count:
                return out
        return []


@pytest.fixture
async def room() -> AsyncIterator[LocalRoom]:
    loop = asyncio.get_running_loop()
    made = LocalRoom("r", Sequencer("e", 0))
    for i in range(CLOCK_EVERY * 3):
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        made.activate(Conn(transport, theirs, community=f"c{i % 2}"))
    yield made
    for conn in made.conns:
        assert isinstance(conn, Conn) and conn.transport is not None
        conn.transport.abort()
        conn.peer.close()


def ticker(room: LocalRoom) -> Ticker:
    return Ticker({room.id: room}, Settings(), Metrics("test"))


def writes(t: Ticker) -> float:
    return t.metrics.registry.get_sample_value("livecore_ws_broadcast_writes_total") or 0.0


async def test_a_pass_longer_than_a_slice_yields_between_slices(room: LocalRoom) -> None:
    """A slice that runs out of time stops after one clock step and says writes remain;
    the next slices finish the pass, every connection once."""
    t = ticker(room)
    room.set_likes(7)
    t.flush(room)
    assert t.write_slice(slice_s=0.0)  # the clock is checked after CLOCK_EVERY
    assert writes(t) == CLOCK_EVERY
    while t.write_slice(slice_s=0.0):
        pass
    assert writes(t) == len(room.conns)
    for conn in room.conns:
        assert isinstance(conn, Conn)
        [payload] = await conn.frames(1)
        assert msgpack.unpackb(payload, raw=False)["st"] == {"likes": 7}


async def test_group_frames_follow_the_batch_to_their_community_only(room: LocalRoom) -> None:
    """One tick's batch and a group's progress reach the group's community in that
    order, in one write; the other community gets the batch alone."""
    t = ticker(room)
    room.set_likes(3)
    room.set_group("gb", "c0", {"v": 1, "n": 1, "scope": "community"})
    t.flush(room)
    while t.write_slice():
        pass
    assert writes(t) == len(room.conns)
    for conn in room.conns:
        assert isinstance(conn, Conn)
        if conn.community == "c0":
            batch, group = await conn.frames(2)
            assert msgpack.unpackb(group, raw=False)["st"]["groups"]["gb"]["c0"]["n"] == 1
        else:
            [batch] = await conn.frames(1)
        assert msgpack.unpackb(batch, raw=False)["st"] == {"likes": 3}


async def test_a_client_over_its_send_buffer_is_closed_4008(room: LocalRoom) -> None:
    """A connection holding more unsent bytes than ws_send_buffer is closed (4008)
    instead of written to; the others get the batch."""
    t = ticker(room)
    stalled = next(iter(room.conns))
    assert isinstance(stalled, Conn) and stalled.transport is not None
    stalled.transport.write(b"\0" * (t.settings.ws_send_buffer * 4))
    room.set_likes(1)
    t.flush(room)
    while t.write_slice():
        pass
    assert stalled.closed_with == [wire.CloseCode.SLOW_CONSUMER]
    assert writes(t) == len(room.conns) - 1
