"""``python -m loadtests.faults.churngen PORT TOKENS...``: connection churn from
its own process, so the viewers measured beside it are not slowed by its loop.

Each visit opens a websocket to room r1 on a bare transport (:class:`Visit`),
says hello once the upgrade is answered, reads the first frame whole, checks
that it is the snapshot, and leaves with a closing handshake. Visits are paced
at ``--rate`` per second (0: as fast as ``--parallel`` workers go) for
``--seconds`` or ``--connects``; the last line printed is JSON: visits done
and failed, seconds, this process's CPU seconds, and whether the pacing fell
behind (the generator, not the node, was then the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any, cast

import msgpack
import uvloop
from websockets.speedups import apply_mask
from websockets.utils import GUID

from loadtests.faults.cluster import mint

#: The upgrade request of every visit (the key is fixed: the node only hashes it).
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = base64.b64encode(hashlib.sha1((KEY + GUID).encode()).digest())
VISIT_TIMEOUT_S = 10.0


def request(port: int, room: str) -> bytes:
    return (f"GET /ws/{room} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: livecore.v1\r\n\r\n"
            ).encode()  # fmt: skip


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.2)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + apply_mask(payload, mask)


CLOSE = client_frame(0x8, struct.pack("!H", 1000))


class Visit(asyncio.Protocol):
    """One visit on a bare transport: upgrade, hello once the 101 came, the first
    frame read whole and checked to be the snapshot, a close frame, gone.

    websockets' asyncio client costs ~1.5 ms of CPU per visit, as much as the
    node spends serving it; this costs a fraction, so one generator process
    can offer the node more visits than it can serve.
    """

    def __init__(self, upgrade: bytes, hello: bytes, done: asyncio.Future[None]) -> None:
        self.upgrade, self.hello, self.done = upgrade, hello, done
        self.buf = bytearray()
        self.opened = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.upgrade)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.opened:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101") or ACCEPT not in head:
                return self._fail(f"upgrade refused: {head[:40]!r}")
            self.opened = True
            assert self.transport is not None
            self.transport.write(self.hello)
        if self.done.done():  # closing: the node answers the close and hangs up
            return
        payload = _frame(self.buf)
        if payload is None:
            return
        opcode, body = payload
        if opcode != 0x2 or msgpack.unpackb(body, raw=False).get("t") != "snapshot":
            return self._fail(f"first frame is not the snapshot (opcode {opcode})")
        assert self.transport is not None
        self.transport.write(CLOSE)  # the closing handshake, as a browser leaving does
        self.buf.clear()
        self.done.set_result(None)

    def _fail(self, why: str) -> None:
        if self.transport is not None:
            self.transport.abort()
        if not self.done.done():
            self.done.set_exception(OSError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(OSError(f"closed before the snapshot: {exc}"))


def _frame(buf: bytearray) -> tuple[int, bytes] | None:
    """The first whole server frame in ``buf`` (opcode, payload), or None yet."""
    if len(buf) < 2:
        return None
    size, at = buf[1] & 0x7F, 2
    if size == 126:
        if len(buf) < 4:
            return None
        size, at = struct.unpack_from("!H", buf, 2)[0], 4
    elif size == 127:
        if len(buf) < 10:
            return None
        size, at = struct.unpack_from("!Q", buf, 2)[0], 10
    if len(buf) < at + size:
        return None
    return buf[0] & 0x0F, bytes(buf[at : at + size])


async def visit(port: int, upgrade: bytes, token: str) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    hello = client_frame(0x2, msgpack.packb({"t": "hello", "token": token}))
    transport, _ = await loop.create_connection(
        lambda: Visit(upgrade, hello, done), "127.0.0.1", port
    )
    try:
        async with asyncio.timeout(VISIT_TIMEOUT_S):
            await done
    except BaseException:
        transport.abort()
        raise
    # the node closes the TCP connection after its close frame (CLOSE_TIMEOUT bounds it)
    loop.call_later(VISIT_TIMEOUT_S, transport.abort)


async def churn(port: int, *, rate: float, seconds: float, connects: int,
                parallel: int, first: int = 0) -> dict[str, Any]:  # fmt: skip
    """Visit until ``connects`` are done or ``seconds`` passed (whichever is set)."""
    upgrade = request(port, "r1")
    started = time.perf_counter()
    cpu = time.process_time()
    counter = iter(range(first, first + (connects or 10**9)))
    done = failed = late = 0

    async def worker() -> None:
        nonlocal done, failed, late
        for i in counter:
            due = started + (i - first) / rate if rate else time.perf_counter()
            now = time.perf_counter()
            if seconds and now - started >= seconds:
                return
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 0.1:
                late += 1  # every worker busy: the generator cannot keep the pace
            try:
                await visit(port, upgrade, mint("viewer", f"c{i}"))
                done += 1
            except (OSError, TimeoutError):
                failed += 1

    await asyncio.gather(*(worker() for _ in range(parallel)))
    spent = time.perf_counter() - started
    return {"done": done, "failed": failed, "seconds": round(spent, 2),
            "rate": round(done / spent) if spent else 0, "late": late,
            "cpu_s": round(time.process_time() - cpu, 2)}  # fmt: skip


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.faults.churngen")
    parser.add_argument("port", type=int)
    parser.add_argument("--rate", type=float, default=0.0, help="visits/s (0: unpaced)")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--connects", type=int, default=0)
    parser.add_argument("--parallel", type=int, default=32)
    parser.add_argument("--first", type=int, default=0, help="number of the first user")
    args = parser.parse_args(argv)
    result = uvloop.run(churn(args.port, rate=args.rate, seconds=args.seconds,
                                connects=args.connects, parallel=args.parallel,
                                first=args.first))  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
