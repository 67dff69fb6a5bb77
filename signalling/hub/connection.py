"""One room-channel websocket, plugged into uvicorn below ASGI.

uvicorn hands a websocket upgrade to the class named by ``ws=``; this class
takes it, runs the RFC 6455 handshake and framing with the sans-I/O
``websockets.server.ServerProtocol``, and owns the transport. That is what
lets the hub write one pre-encoded broadcast frame to thousands of
transports (ASGI would re-frame each send per connection).

Contract with the hub (a :class:`Channel`, found in uvicorn's app state as
``"hub"``): the hub calls :meth:`write` with whole frames and :meth:`close`
with a :class:`~livecore.wire.CloseCode`; the connection calls
``channel.join`` for the first (hello) message, ``channel.handle`` for later
ones and ``channel.leave`` when the TCP connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
from collections import deque
from collections.abc import Coroutine
from typing import Any, Protocol, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from livecore import wire
from livecore.config import Settings
from livecore.errors import ErrorCode, LivecoreError
from livecore.ratelimit import TokenBucket
from livecore.tokens import Claims, valid_id
from signalling.hub.context import Context
from signalling.hub.frames import MESSAGE, ClientFrames
from signalling.hub.room import LocalRoom
from signalling.node.forwarded import client_address
from signalling.node.metrics import Metrics

log = logging.getLogger("livecore.hub")
#: websockets logs every open and close at INFO: too chatty for thousands of viewers.
_ws_log = logging.getLogger("livecore.hub.ws")
_ws_log.setLevel(logging.WARNING)
_PATH = re.compile(r"^/ws/([^/?]+)(?:\?.*)?$")
#: Bad messages a connection may send before it is closed (4029).
MAX_ERRORS = 20
#: Messages a connection may have handled or waiting; past it, reading pauses.
MAX_INFLIGHT = 8
CLOSE_TIMEOUT_S = 3.0


class Channel(Protocol):
    """What a connection needs of the node's hub."""

    settings: Settings
    metrics: Metrics

    def admit(self, conn: HubConnection, address: str) -> str | None:
        """None when this node takes the connection, else why not (it is counted)."""
        ...

    async def join(self, conn: HubConnection, hello: wire.Message) -> None: ...

    async def handle(self, conn: HubConnection, message: wire.Message) -> None: ...

    def handle_now(
        self, conn: HubConnection, message: wire.Message
    ) -> Coroutine[Any, Any, None] | None:
        """Handle an idle connection's message at once if it can; else the rest to run."""
        ...

    def leave(self, conn: HubConnection) -> None: ...


class HubConnection(asyncio.Protocol):
    """A websocket of ``/ws/{room}`` (uvicorn ``ws_protocol_class``)."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.hub: Channel = app_state["hub"]
        self.connections: set[Any] = server_state.connections
        self.loop = _loop or asyncio.get_running_loop()
        self.proto = ServerProtocol(
            subprotocols=[Subprotocol(wire.SUBPROTOCOL)],
            max_size=wire.MAX_CLIENT_FRAME,
            logger=_ws_log,
        )
        self.transport: asyncio.Transport | None = None
        self.room_id = ""
        #: The client address counted against the per-address cap ("" until admitted).
        self.address = ""
        #: The user counted against the per-user cap ("" until the hello's token is checked).
        self.counted_user = ""
        self.room: LocalRoom | None = None
        self.claims: Claims | None = None
        #: What this connection's handlers get; set when it has joined.
        self.context: Context | None = None
        #: The viewer's community (from the token, or resolved from a location).
        self.community: str | None = None
        #: Communities offered by the last ``locate`` outside every community.
        self.nearby: list[str] = []
        self.joining = False
        self.closing = False
        self.errors = 0
        self.inflight = 0
        self.paused = False
        self.last_heard = self.loop.time()
        rate = self.hub.settings.ws_message_rate
        self.bucket = TokenBucket(rate, rate * 2, rate * 2, self.loop.time())
        self._timer: asyncio.TimerHandle | None = None
        self._expiry: asyncio.TimerHandle | None = None
        #: Armed while the transport holds bytes the kernel would not take (4008 when it fires).
        self._drain: asyncio.TimerHandle | None = None
        #: The message being handled, and those received meanwhile (each starts
        #: when the one before it has ended: a connection's messages in order).
        self._running: asyncio.Task[None] | None = None
        self._waiting: deque[Coroutine[Any, Any, None]] = deque()
        #: Splits frames after the handshake (None: every byte goes to ``proto``).
        self._frames: ClientFrames | None = None

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._limit_send_buffers()
        self.connections.add(self)
        self._timer = self.loop.call_later(self.hub.settings.hello_timeout_s, self._hello_timeout)

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.loop.time()
        frames = self._frames
        if frames is None:
            self._to_proto(data)
            if self.proto.state is State.OPEN and data.endswith(b"\r\n\r\n"):
                # The handshake ended this chunk (a client waits for the answer before
                # its first frame, RFC 6455 §4.1): the parser waits at a frame boundary.
                self._frames = ClientFrames(wire.MAX_CLIENT_FRAME)
            return
        for kind, chunk in frames.split(data):
            if kind != MESSAGE:  # whole frames the protocol judges (pings, closes...), or the rest
                self._to_proto(chunk)
            elif self.proto.state is State.OPEN:  # (after a close, messages are dropped)
                self._message(chunk)
        if frames.done or self.proto.state is not State.OPEN:
            # Closing, or a frame the protocol refused: it reads every later byte.
            self._frames = None
            if rest := frames.take_rest():
                self._to_proto(rest)

    def _to_proto(self, data: bytes) -> None:
        """Bytes for websockets' parser: the handshake, or whole frames it judges."""
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush_proto()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush_proto()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        self.resume_writing()
        while self._waiting:  # never started: nothing of theirs ran
            self._waiting.popleft().close()
        if self._running is not None:
            self._running.cancel()
        self.hub.leave(self)
        self.transport = None

    def _limit_send_buffers(self) -> None:
        """Make a stalled client visible in bytes and seconds.

        The kernel's send buffer is capped (``ws_socket_send_buffer``): left to
        its autotuning it takes megabytes from a client that reads nothing
        before the node sees any of it. The transport then calls
        :meth:`pause_writing` as soon as a byte waits in user space (the
        kernel's buffer is full) and :meth:`resume_writing` once it is empty.
        """
        assert self.transport is not None
        size = self.hub.settings.ws_socket_send_buffer
        sock = self.transport.get_extra_info("socket")
        if size and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        self.transport.set_write_buffer_limits(high=0, low=0)

    def pause_writing(self) -> None:
        """Bytes wait for the client: it has ``ws_drain_timeout_s`` to read them all.

        The byte limit (``ws_send_buffer``, checked at each write) stops a fast
        room from piling up memory; this time limit cuts a client that reads
        nothing, or a byte a second, even in a room too quiet to reach the limit.
        """
        if self._drain is None and not self.closing:
            timeout = self.hub.settings.ws_drain_timeout_s
            self._drain = self.loop.call_later(timeout, self._drain_timeout)

    def resume_writing(self) -> None:
        """The send buffer is empty again."""
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    def _drain_timeout(self) -> None:
        self._drain = None
        if not self.closing:
            self.hub.metrics.ws_slow_consumers.inc()
            self.close(wire.CloseCode.SLOW_CONSUMER, "send buffer not read in time; reconnect")

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: tell the client the node is going away."""
        self.close(wire.CloseCode.GOING_AWAY, "server shutting down")

    # -- handshake and frames -------------------------------------------------

    def _handshake(self, request: Request) -> None:
        match = _PATH.match(request.path)
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if match is None or not valid_id(match.group(1)):
            response = self.proto.reject(404, "no such websocket endpoint; use /ws/{room}\n")
        elif wire.SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            response = self.proto.reject(
                400, f"offer the websocket subprotocol {wire.SUBPROTOCOL}\n"
            )
        elif (refusal := self.hub.admit(self, self._client_address(request))) is not None:
            status = 429 if refusal == "ws_ip_cap" else 503
            why = "too many connections from your address" if status == 429 else "node at capacity"
            response = self.proto.reject(status, f"{why}; try again later\n")
            response.headers["Retry-After"] = "5"
        else:
            self.room_id = match.group(1)
            response = self.proto.accept(request)
        self.proto.send_response(response)

    def _client_address(self, request: Request) -> str:
        """The peer, or behind a ``--trusted-proxy`` the client it forwards for: the
        per-address websocket cap applies to each client, not to the proxy."""
        return client_address(
            self._peer_address(), request.headers.get_all("X-Forwarded-For"),
            self.hub.settings.trusted_proxies,
        )  # fmt: skip

    def _peer_address(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.BINARY and frame.fin:
            self._message(bytes(frame.data))
        elif frame.opcode is Opcode.TEXT:
            self.close(wire.CloseCode.UNSUPPORTED_DATA, "binary msgpack frames only")
        elif frame.opcode in (Opcode.BINARY, Opcode.CONT):
            self.close(wire.CloseCode.UNSUPPORTED_DATA, "fragmented messages are not accepted")

    def _message(self, data: bytes) -> None:
        if self.closing:
            return
        if self.claims is None:
            self._first_message(data)
            return
        try:
            message = wire.decode(data)
        except LivecoreError as err:
            self.fail(err)
            return
        if not self.bucket.allow(self.loop.time()):
            # decoded first (bounded by the frame size) so the error names the request
            self.fail(
                LivecoreError(ErrorCode.RATE_LIMITED, "too many messages; slow down"), message
            )
            return
        if message.type is wire.ClientType.HELLO:
            self.fail(LivecoreError(ErrorCode.BAD_MESSAGE, "hello was already sent"), message)
            return
        if self._running is None:  # idle: nothing of this connection is before it
            rest = self.hub.handle_now(self, message)
            if rest is not None:
                self._spawn(rest)
            return
        self._spawn(self.hub.handle(self, message))

    def _first_message(self, data: bytes) -> None:
        if self.joining:
            self.fail(LivecoreError(ErrorCode.BAD_MESSAGE, "wait for the snapshot"))
            return
        try:
            message = wire.decode(data)
        except LivecoreError as err:
            self.close(wire.CloseCode.BAD_HELLO, f"{err.code}: {err.message}"[:120])
            return
        if message.type is not wire.ClientType.HELLO:
            self.close(wire.CloseCode.BAD_HELLO, f"expected hello, got {message.type.value}")
            return
        if self._timer is not None:
            self._timer.cancel()
        self.joining = True
        self._spawn(self.hub.join(self, message))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` once the connection's previous message has been handled: one
        connection's messages are handled in the order they arrived (a ``locate`` then
        a ``groupbuy_join`` join the located community), while other connections'
        messages run meanwhile. A message of an idle connection starts at once, in its
        own task; the next waits here (no task) until that one ends."""
        self.inflight += 1
        if self._running is None:
            self._start(coro)
        else:
            self._waiting.append(coro)
        if self.inflight >= MAX_INFLIGHT and self.transport is not None and not self.paused:
            self.transport.pause_reading()
            self.paused = True

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._running = task
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running = None
        self.inflight -= 1
        if self.paused and self.inflight < MAX_INFLIGHT // 2 and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        if not task.cancelled() and task.exception() is not None:
            log.error("handler failed", exc_info=task.exception())
        if self._waiting:
            self._start(self._waiting.popleft())

    def arm_expiry(self, seconds: float) -> None:
        """Close (4003) when the session's token expires, ``seconds`` from now."""
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = self.loop.call_later(max(0.0, seconds), self._token_expired)

    def _token_expired(self) -> None:
        self.close(wire.CloseCode.TOKEN_EXPIRED, "token expired; reconnect with a new one")

    def _hello_timeout(self) -> None:
        if self.claims is None and not self.joining:
            self.close(wire.CloseCode.HELLO_TIMEOUT, "no hello in time")

    # -- output ------------------------------------------------------------------

    def _flush_proto(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.proto.data_to_send():
            if chunk:
                transport.write(chunk)
            else:  # SEND_EOF: the closing handshake is complete
                transport.close()
                return
        if self.proto.close_expected() and self._timer is None:
            self._timer = self.loop.call_later(CLOSE_TIMEOUT_S, self._abort)

    def ping(self) -> None:
        """Send a websocket ping (keep-alive), if the connection is open."""
        if self.proto.state is State.OPEN:
            self.proto.send_ping(b"")
            self._flush_proto()

    def write(self, frame: bytes) -> bool:
        """Queue a whole frame; a client over its send buffer is closed (4008)."""
        transport = self.transport
        if transport is None or self.closing:
            return False
        if transport.get_write_buffer_size() > self.hub.settings.ws_send_buffer:
            self.hub.metrics.ws_slow_consumers.inc()
            self.close(wire.CloseCode.SLOW_CONSUMER, "send buffer full; reconnect and recover")
            return False
        transport.write(frame)
        return True

    def send(self, payload: bytes) -> bool:
        """Send one encoded server message."""
        return self.write(wire.ws_frame(payload))

    def fail(
        self, err: LivecoreError, message: wire.Message | None = None, *, counted: bool = True
    ) -> None:
        """Answer a bad message with an error; close (4029) after too many. A refusal that
        is the sale's outcome, not the client's fault (sold out), is not ``counted``."""
        self.hub.metrics.refused(err.code.value)
        self.send(wire.error(err, message.request_id if message else err.request_id))
        self.errors += counted
        if self.errors > MAX_ERRORS:
            self.close(wire.CloseCode.TOO_MANY_ERRORS, "too many bad messages")

    def close(self, code: int, reason: str = "") -> None:
        """Start the closing handshake; the TCP connection is dropped if it stalls."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.proto.state is State.OPEN:
            self.proto.send_close(code, reason)
            self._flush_proto()
        else:
            self.transport.close()
        if self._timer is None:
            self._timer = self.loop.call_later(CLOSE_TIMEOUT_S, self._abort)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
