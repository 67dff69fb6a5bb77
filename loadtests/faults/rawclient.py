"""Websocket clients on a bare socket, which read when (and as little as) told.

The upgrade and the hello are made with websockets' sans-I/O client protocol;
after that the socket is the caller's: a client that never reads, one that
reads a byte a second, one that vanished (never reads, never answers a ping).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import msgpack
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

SUBPROTOCOL = Subprotocol("livecore.v1")


async def joined_socket(
    port: int, room: str, token: str, *, rcvbuf: int | None = None
) -> socket.socket:
    """A socket that did the upgrade and sent ``hello``, nothing read past the 101.

    ``rcvbuf`` sets SO_RCVBUF before connecting (the window the kernel offers).
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws/{room}"),
                           subprotocols=[SUBPROTOCOL])  # fmt: skip
    proto.send_request(proto.connect())
    await _send(sock, proto)
    async with asyncio.timeout(10):
        while proto.state is State.CONNECTING:  # RFC 6455 §4.1: the 101 before any frame
            data = await loop.sock_recv(sock, 1)  # byte by byte: nothing past the 101
            if not data:
                raise ConnectionError("closed during the upgrade")
            proto.receive_data(data)
    if proto.state is not State.OPEN:
        raise ConnectionError(f"upgrade refused: {proto.handshake_exc}")
    proto.send_binary(msgpack.packb({"t": "hello", "token": token}))
    await _send(sock, proto)
    return sock


async def _send(sock: socket.socket, proto: ClientProtocol) -> None:
    loop = asyncio.get_running_loop()
    for chunk in proto.data_to_send():
        await loop.sock_sendall(sock, chunk)


async def trickle(sock: socket.socket, every_s: float = 1.0) -> int:
    """Read one byte every ``every_s`` until the server closes; the bytes read."""
    loop = asyncio.get_running_loop()
    got = 0
    try:
        while True:
            data = await loop.sock_recv(sock, 1)
            if not data:
                return got
            got += 1
            await asyncio.sleep(every_s)
    except OSError:  # reset by the node
        return got


async def drain(sock: socket.socket, wait: float) -> dict[str, Any]:
    """Read everything until EOF (within ``wait``): bytes read and how it ended."""
    loop = asyncio.get_running_loop()
    got = 0
    try:
        async with asyncio.timeout(wait):
            while data := await loop.sock_recv(sock, 1 << 16):
                got += len(data)
        return {"bytes": got, "end": "eof"}
    except TimeoutError:
        return {"bytes": got, "end": "open"}
    except OSError:
        return {"bytes": got, "end": "reset"}
