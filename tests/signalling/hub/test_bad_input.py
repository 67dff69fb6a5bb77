"""Bad input on the room channel: a clear error or a documented close, never a crash."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgpack
import pytest
import websockets
from websockets.typing import Subprotocol

from tests.helpers import Node, token

PROTO = [Subprotocol("livecore.v1")]


def ws_url(node: Node, room: str = "r1") -> str:
    return f"ws://127.0.0.1:{node.port}/ws/{room}"


async def joined(node: Node, role: str = "viewer", user: str = "v1") -> Any:
    ws = await websockets.connect(ws_url(node), subprotocols=PROTO)
    await ws.send(msgpack.packb({"t": "hello", "token": token(role, user)}))
    assert msgpack.unpackb(await ws.recv())["t"] == "snapshot"
    return ws


async def next_reply(ws: Any) -> dict[str, Any]:
    """The next ack or error (batches are skipped)."""
    while True:
        message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5))
        if message["t"] in ("ack", "error"):
            return dict(message)


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1", "bad_message"),  # never-used msgpack byte
        (b"\x92\x01", "bad_message"),  # truncated array
        (msgpack.packb([1, 2]), "bad_message"),
        (msgpack.packb({"x": 1}), "bad_message"),
        (msgpack.packb({"t": "dance"}), "unknown_type"),
        (msgpack.packb({"t": "comment"}), "invalid_field"),
        (msgpack.packb({"t": "comment", "text": 5}), "invalid_field"),
        (msgpack.packb({"t": "comment", "text": "x" * 201}), "invalid_field"),
        (msgpack.packb({"t": "comment", "text": "hi", "extra": 1}), "invalid_field"),
        (msgpack.packb({"t": "like", "n": 500}), "invalid_field"),
        (msgpack.packb({"t": "vote", "poll": "nope", "option": 1}), "poll_not_found"),
        (msgpack.packb({"t": "hello", "token": "x"}), "bad_message"),
    ],
)
async def test_bad_messages_get_an_error_and_keep_the_connection(
    hub_node: Node, frame: bytes, code: str
) -> None:
    """Each bad message is answered with its stable code; the connection still works."""
    ws = await joined(hub_node)
    await ws.send(frame)
    reply = await next_reply(ws)
    assert reply["t"] == "error" and reply["code"] == code and reply["message"]
    await ws.send(msgpack.packb({"t": "comment", "id": 7, "text": "still alive"}))
    assert (await next_reply(ws))["t"] == "ack"
    await ws.close()


async def test_error_names_the_request_id(hub_node: Node) -> None:
    """An error for a message with an id carries that id."""
    ws = await joined(hub_node)
    await ws.send(msgpack.packb({"t": "vote", "id": 42, "poll": "nope", "option": 0}))
    reply = await next_reply(ws)
    assert reply["id"] == 42 and reply["code"] == "poll_not_found"
    await ws.close()


@pytest.mark.parametrize(
    ("first", "close_code", "reason_start"),
    [
        (msgpack.packb({"t": "comment", "text": "hi"}), 4000, "expected hello"),
        (b"\xc1", 4000, "bad_message"),
        (msgpack.packb({"t": "hello", "token": "garbage"}), 4001, "token_malformed"),
        (msgpack.packb({"t": "hello", "token": token("viewer", "v", room="other")}), 4001,
         "token_wrong_room"),
        (msgpack.packb({"t": "hello", "token": token("admin", "a", room="*")}), 4001,
         "token_wrong_role"),
    ],
)  # fmt: skip
async def test_bad_hello_closes_with_a_code(
    hub_node: Node, first: bytes, close_code: int, reason_start: str
) -> None:
    """A first message that is not a valid hello closes with 4000/4001 and the reason."""
    ws = await websockets.connect(ws_url(hub_node), subprotocols=PROTO)
    await ws.send(first)
    code, reason = await closed_with(ws)
    assert code == close_code and reason.startswith(reason_start)


async def test_protocol_violations_close(hub_node: Node) -> None:
    """Text frames close with 1003, frames over 8 KiB with 1009."""
    ws = await joined(hub_node)
    await ws.send("text, not msgpack")
    assert (await closed_with(ws))[0] == 1003
    ws = await joined(hub_node)
    await ws.send(msgpack.packb({"t": "comment", "text": "x" * 9000}))
    assert (await closed_with(ws))[0] == 1009


async def test_hello_timeout_and_unknown_room(hub_node: Node) -> None:
    """Silence after connecting closes with 4002; a room that does not exist with 4004."""
    ws = await websockets.connect(ws_url(hub_node), subprotocols=PROTO)
    assert (await closed_with(ws))[0] == 4002
    ws = await websockets.connect(ws_url(hub_node, "nosuchroom"), subprotocols=PROTO)
    await ws.send(msgpack.packb({"t": "hello", "token": token("viewer", "v", room="nosuchroom")}))
    assert (await closed_with(ws))[0] == 4004


async def test_handshake_refusals(hub_node: Node) -> None:
    """No subprotocol → 400; a path that is not /ws/{room} → 404."""
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(ws_url(hub_node))
    assert info.value.response.status_code == 400
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(
            f"ws://127.0.0.1:{hub_node.port}/ws/bad%20room", subprotocols=PROTO
        )
    assert info.value.response.status_code == 404


async def test_rate_limit_then_too_many_errors(hub_node: Node) -> None:
    """Flooding gets rate_limited errors, then the connection is closed with 4029."""
    ws = await joined(hub_node)
    for _ in range(100):
        await ws.send(msgpack.packb({"t": "like", "n": 1}))
    codes = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5))
            if message["t"] == "error":
                codes.append(message["code"])
    assert ws.close_code == 4029
    assert set(codes) == {"rate_limited"}


async def test_garbage_does_not_hurt_the_node(hub_node: Node) -> None:
    """After a burst of garbage from many sockets the node is healthy and serves comments."""

    async def spam(i: int) -> None:
        ws = await joined(hub_node, user=f"s{i}")
        for j in range(15):
            await ws.send(bytes([j % 256]) * (j + 1))
        await ws.close()

    await asyncio.gather(*(spam(i) for i in range(10)))
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{hub_node.url}/healthz")).status_code == 200
    ws = await joined(hub_node, role="host", user="host1")
    await ws.send(msgpack.packb({"t": "comment", "id": 1, "text": "fine"}))
    assert (await next_reply(ws))["t"] == "ack"
    await ws.close()
