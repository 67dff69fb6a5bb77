"""A lean room-channel client for load generation: thousands per process, one core.

Each connection is a bare ``asyncio.Protocol``: it writes the upgrade request
and a hello, then parses server frames by hand (they are never masked).
Broadcast batches are not decoded: the offsets ``a`` and ``z`` sit at fixed
places (``wire.encode_batch`` fixes the key order), which is all a viewer
needs to count deliveries, gaps and duplicates. A few "sampled" viewers do
decode batches to measure latency from the comment's ``cid``
(``<seq>-<send time ns>``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
from typing import Any

import msgpack

_MASK = b"\x00\x00\x00\x00"  # a zero masking key: masked per RFC 6455, no per-byte work
_BATCH_PREFIX = b"\x85\xa1t\xa5batch\xa1a"


def host_port(url: str) -> tuple[str, int]:
    """``("127.0.0.1", 8080)`` of ``http://127.0.0.1:8080`` (brackets of IPv6 removed)."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    return host.strip("[]"), int(port)


def client_frame(payload: bytes) -> bytes:
    """A masked binary frame (client → server)."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, 0x80 | n)) + _MASK + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 0x80 | 126, n) + _MASK + payload
    return struct.pack("!BBQ", 0x82, 0x80 | 127, n) + _MASK + payload


def _uint(buf: bytes, i: int) -> tuple[int | None, int]:
    """A msgpack nil or unsigned int at ``buf[i]``: (value, next index)."""
    b = buf[i]
    if b <= 0x7F:
        return b, i + 1
    if b == 0xC0:
        return None, i + 1
    size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[b]
    return int.from_bytes(buf[i + 1 : i + 1 + size], "big"), i + 1 + size


def batch_offsets(payload: bytes) -> tuple[int | None, int | None] | None:
    """``(a, z)`` of a batch frame without decoding it; None if not a batch."""
    if not payload.startswith(_BATCH_PREFIX):
        return None
    first, i = _uint(payload, len(_BATCH_PREFIX))
    last, _ = _uint(payload, i + 2)  # skip the "z" key (0xa1 0x7a)
    return first, last


class Stats:
    """What the viewers of one process saw."""

    def __init__(self) -> None:
        self.joined = 0
        self.failed = 0
        self.closed = 0
        self.delivered = 0
        self.duplicates = 0
        self.gaps = 0
        self.latencies_ms: list[float] = []
        self.max_samples = 200_000


class LeanConnection(asyncio.Protocol):
    """One websocket; ``on_message`` gets every server message except batches."""

    __slots__ = (
        "_buf",
        "_hello",
        "_upgraded",
        "closed",
        "joined",
        "last",
        "sampled",
        "start",
        "stats",
        "transport",
    )  # fmt: skip

    def __init__(self, hello: bytes, stats: Stats, *, sampled: bool = False) -> None:
        self._hello = hello
        self.stats = stats
        self.sampled = sampled
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._upgraded = False
        self.joined: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.start = 0
        self.last = 0

    def upgrade_request(self, host: str, path: str) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: livecore.v1\r\n\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError("closed before the snapshot"))
        if not self.closed.done():
            self.closed.set_result(1006)
        self.transport = None

    def send(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(client_frame(payload))

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.joined.set_exception(ConnectionError(buf[:80].decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self._upgraded = True
            buf = buf[end + 4 :]
            self.send(self._hello)
        i, n = 0, len(buf)
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            size, head = b1 & 0x7F, 2
            if size == 126:
                if n - i < 4:
                    break
                size, head = int.from_bytes(buf[i + 2 : i + 4], "big"), 4
            elif size == 127:
                if n - i < 10:
                    break
                size, head = int.from_bytes(buf[i + 2 : i + 10], "big"), 10
            if n - i < head + size:
                break
            payload = buf[i + head : i + head + size]
            i += head + size
            self._frame(b0 & 0x0F, payload)
        self._buf = buf[i:] if i < n else b""

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x2:
            offsets = batch_offsets(payload)
            if offsets is None:
                self.on_message(msgpack.unpackb(payload, raw=False))
            elif offsets[0] is not None:
                self._count(offsets[0], offsets[1] or offsets[0], payload)
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.closed.done():
                self.closed.set_result(code)
            if self.transport is not None:
                self.transport.write(bytes((0x88, 0x80 | len(payload[:2]))) + _MASK + payload[:2])
                self.transport.close()
        elif opcode == 0x9 and self.transport is not None:  # ping → pong
            self.transport.write(bytes((0x8A, 0x80 | len(payload))) + _MASK + payload)

    def _count(self, first: int, last: int, payload: bytes) -> None:
        stats = self.stats
        if first > self.last + 1:
            stats.gaps += first - self.last - 1
        if first <= self.last:
            stats.duplicates += min(last, self.last) - first + 1
        if last > self.last:
            stats.delivered += last - max(first, self.last + 1) + 1
            self.last = last
        if self.sampled and len(stats.latencies_ms) < stats.max_samples:
            now = time.time_ns()
            for event in msgpack.unpackb(payload, raw=False)["ev"]:
                cid = event.get("cid")
                if cid:
                    stats.latencies_ms.append((now - int(cid.split("-", 1)[1])) / 1e6)

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "snapshot" and not self.joined.done():
            self.start = self.last = int(message["offset"])
            self.joined.set_result(message)


async def open_connection(
    host: str, port: int, room: str, hello: bytes, stats: Stats, *,
    sampled: bool = False, factory: type[LeanConnection] = LeanConnection,
) -> LeanConnection:  # fmt: skip
    """Connect, upgrade, hello, and wait for the snapshot."""
    loop = asyncio.get_running_loop()
    transport, conn = await loop.create_connection(
        lambda: factory(hello, stats, sampled=sampled), host, port
    )
    transport.write(conn.upgrade_request(f"{host}:{port}", f"/ws/{room}"))
    await asyncio.wait_for(conn.joined, 30)
    return conn
