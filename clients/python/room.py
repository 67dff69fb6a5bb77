"""Python client of the room channel (``/ws/{room}``, subprotocol ``livecore.v1``).

    async with RoomClient("ws://127.0.0.1:8080", "demo", token) as room:
        print(room.snapshot["viewers"])
        await room.request("comment", text="hello")
        async for event in room.events():
            ...

The client keeps its position (epoch, offset): ``reconnect()`` resumes from
it, and the server replays the gap or sends a fresh snapshot. Events are
yielded once each, in offset order; a gap raises :class:`GapError`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

SUBPROTOCOL = "livecore.v1"


class ClientError(Exception):
    """The server refused a request: ``code`` is the stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class GapError(Exception):
    """Events were skipped: the client must reconnect."""


class RoomClient:
    """One connection to a room; reconnects resume from the last offset seen."""

    def __init__(self, base_url: str, room: str, token: str, *, max_pending: int = 10_000):
        self.url = base_url.replace("http://", "ws://").replace("https://", "wss://")
        self.url = f"{self.url.rstrip('/')}/ws/{room}"
        self.room = room
        self.token = token
        self.ws: ClientConnection | None = None
        self.snapshot: dict[str, Any] = {}
        self.epoch: str | None = None
        self.offset = 0
        self.state: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_pending)
        self._reader: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[tuple[int, str]] | None = None
        #: Why the reader stopped, if it stopped on a gap.
        self.failure: GapError | None = None

    async def __aenter__(self) -> RoomClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, *, resume: bool = False) -> dict[str, Any]:
        """Open the socket and say hello; returns the snapshot or ``recovered`` message."""
        self.failure = None
        self.ws = await websockets.connect(
            self.url, subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=8 * 1024 * 1024,
            open_timeout=10,
        )  # fmt: skip
        hello: dict[str, Any] = {"t": "hello", "token": self.token}
        if resume and self.epoch is not None:
            hello["since"] = {"epoch": self.epoch, "offset": self.offset}
        await self.ws.send(msgpack.packb(hello))
        first = msgpack.unpackb(await self.ws.recv(), raw=False)
        if first.get("t") == "snapshot":
            self.snapshot = first
            self.epoch, self.offset = first["epoch"], first["offset"]
            self.state = {"likes": first["likes"], "viewers": first["viewers"]}
        elif first.get("t") == "recovered":
            self.epoch = first["epoch"]
            self.state.update(first.get("st") or {})
            for event in first["events"]:
                self._event(event)
            self.offset = first["offset"]
        elif first.get("t") == "error":
            raise ClientError(first["code"], first["message"])
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        return dict(first)

    async def reconnect(self) -> dict[str, Any]:
        """Drop the socket and resume from the last offset seen."""
        await self.close()
        return await self.connect(resume=True)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self.ws = None

    async def send(self, kind: str, /, **fields: Any) -> int:
        """Send a message; returns its request id (the ack or error carries it)."""
        assert self.ws is not None, "connect first"
        request_id = next(self._ids)
        await self.ws.send(msgpack.packb({"t": kind, "id": request_id, **fields}))
        return request_id

    async def request(self, kind: str, /, wait: float = 10.0, **fields: Any) -> dict[str, Any]:
        """Send and wait for the ack; raises ClientError with the server's code."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        request_id = next(self._ids)
        self._waiting[request_id] = future
        assert self.ws is not None, "connect first"
        await self.ws.send(msgpack.packb({"t": kind, "id": request_id, **fields}))
        try:
            async with asyncio.timeout(wait):
                return await future
        finally:
            self._waiting.pop(request_id, None)

    async def send_raw(self, data: bytes | str) -> None:
        """Send bytes as they are (tests of bad input)."""
        assert self.ws is not None
        await self.ws.send(data)

    async def next_event(self, wait: float = 10.0) -> dict[str, Any]:
        """The next event in offset order (or a state update ``{"t": "state", ...}``).

        Raises :class:`GapError` once the events have a gap (then ``reconnect``)."""
        if self._events.empty() and self.failure is not None:
            raise self.failure
        async with asyncio.timeout(wait):
            return await self._events.get()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self._events.get()

    def _event(self, event: dict[str, Any]) -> None:
        offset = event["o"]
        if offset <= self.offset:
            return  # already seen (snapshot tail or replay overlap)
        if offset != self.offset + 1:
            raise GapError(f"expected offset {self.offset + 1}, got {offset}")
        self.offset = offset
        self._events.put_nowait(event)

    async def _read(self) -> None:
        assert self.ws is not None and self.closed is not None
        try:
            async for frame in self.ws:
                if isinstance(frame, str):
                    continue
                self._dispatch(msgpack.unpackb(frame, raw=False))
        except websockets.ConnectionClosed:
            pass
        except asyncio.QueueFull:
            # The application reads events slower than they come: give up the
            # socket (reconnect() resumes from the last event queued).
            await self.ws.close(1000, "client fell behind")
        except GapError as exc:
            # Never skip silently: the reader stops, next_event() raises, and
            # reconnect() resumes from the last event delivered.
            self.failure = exc
            await self.ws.close(1000, "gap in events")
        finally:
            rcvd = self.ws.close_code, self.ws.close_reason
            if not self.closed.done():
                self.closed.set_result((rcvd[0] or 1006, rcvd[1] or ""))
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "batch":
            for event in message["ev"]:
                self._event(event)
            if message["st"]:
                state = dict(message["st"])
                tallies = {**self.state.get("tallies", {}), **state.pop("tallies", {})}
                self.state.update(state, tallies=tallies)
                self._events.put_nowait({"t": "state", **message["st"]})
        elif kind in ("ack", "error"):
            future = self._waiting.get(message.get("id") or -1)
            if future is not None and not future.done():
                if kind == "ack":
                    future.set_result(message)
                else:
                    future.set_exception(ClientError(message["code"], message["message"]))
            elif kind == "error":
                self._events.put_nowait(message)
