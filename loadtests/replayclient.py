"""The replay's audience connection: a lean websocket that also counts acks and errors.

``ReplayConnection`` is ``wsclient.LeanConnection`` (raw frames, batches
counted by their offsets without decoding; sampled connections decode them
for latency) plus what a replay reports: acks, refusals by error code, close
codes it did not ask for, and recovery after a reconnect (``hello.since``):
the events a ``recovered`` message replays count as delivered; a fresh
``snapshot`` with ``recovered: false`` counts the skipped offsets as lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import msgpack

from loadtests.wsclient import LeanConnection, Stats

ERROR_CONNECT = "connect_failed"


class Counters(Stats):
    """Per-process totals shared by every ``ReplayConnection`` of a worker."""

    def __init__(self) -> None:
        super().__init__()
        self.acked = 0
        self.top_offset = 0
        self.errors: Counter[str] = Counter()
        self.lost_on_resync = 0


class ReplayConnection(LeanConnection):
    """One virtual viewer's socket (see the module doc)."""

    __slots__ = ("counters", "epoch", "leaving", "next_id")

    def __init__(self, hello: bytes, stats: Stats, *, sampled: bool = False) -> None:
        super().__init__(hello, stats, sampled=sampled)
        assert isinstance(stats, Counters)
        self.counters = stats
        self.next_id = 0
        self.epoch = ""
        self.leaving = False

    def request(self, message_type: str, /, **fields: Any) -> None:
        """Send one client message with a fresh request id."""
        self.next_id += 1
        self.send(msgpack.packb({"t": message_type, "id": self.next_id, **fields}))

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        counters = self.counters
        if kind == "ack":
            counters.acked += 1
            offset = message.get("o")
            if isinstance(offset, int) and offset > counters.top_offset:
                counters.top_offset = offset
        elif kind == "error":
            counters.errors[str(message.get("code", "unknown"))] += 1
        elif kind == "recovered":
            self._recovered(message)
        elif kind == "snapshot":
            self.epoch = str(message.get("epoch", ""))
            if message.get("recovered") is False and self.last:
                counters.lost_on_resync += max(0, int(message["offset"]) - self.last)
            super().on_message(message)

    def _recovered(self, message: dict[str, Any]) -> None:
        for event in message.get("events") or []:
            offset = event.get("o")
            if isinstance(offset, int) and offset > self.last:
                self.counters.delivered += 1
                self.last = offset
        self.last = max(self.last, int(message.get("offset", self.last)))
        if not self.joined.done():
            self.joined.set_result(message)

    def leave(self) -> None:
        """Close on purpose (not counted as an error)."""
        self.leaving = True
        if self.transport is not None:
            self.transport.close()

    def unexpected_close(self) -> int | None:
        """The close code if the server closed this connection; None if open or ours."""
        if self.leaving or not self.closed.done():
            return None
        return int(self.closed.result())


def hello(token: str, since: tuple[str, int] | None = None) -> bytes:
    message: dict[str, Any] = {"t": "hello", "token": token}
    if since is not None and since[0]:
        message["since"] = {"epoch": since[0], "offset": since[1]}
    return bytes(msgpack.packb(message))


async def connect(
    host: str, port: int, room: str, hello_bytes: bytes, counters: Counters, *, sampled: bool
) -> ReplayConnection:
    """Connect, upgrade, hello; returns once the snapshot (or recovery) arrived."""
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: ReplayConnection(hello_bytes, counters, sampled=sampled), host, port
    )
    conn.transport.write(conn.upgrade_request(f"{host}:{port}", f"/ws/{room}"))  # type: ignore[union-attr]
    try:
        await asyncio.wait_for(conn.joined, 30)
    except BaseException:
        conn.leave()
        raise
    return conn


class HostConnection(ReplayConnection):
    """The room host's socket: requests whose ack (or error) resolves a future."""

    __slots__ = ("waiting",)

    def __init__(self, hello: bytes, stats: Stats, *, sampled: bool = False) -> None:
        super().__init__(hello, stats, sampled=sampled)
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    def ask(self, message_type: str, /, **fields: Any) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.request(message_type, **fields)
        self.waiting[self.next_id] = future
        return future

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("t") in ("ack", "error"):
            future = self.waiting.pop(message.get("id") or -1, None)
            if future is not None and not future.done():
                future.set_result(message)
        super().on_message(message)


async def connect_host(
    host: str, port: int, room: str, token: str, counters: Counters
) -> HostConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: HostConnection(hello(token), counters), host, port
    )
    conn.transport.write(conn.upgrade_request(f"{host}:{port}", f"/ws/{room}"))  # type: ignore[union-attr]
    await asyncio.wait_for(conn.joined, 30)
    return conn
