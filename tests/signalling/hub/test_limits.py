"""Limits per user and per address, across connections."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgpack
import pytest
import websockets

from tests.helpers import Node, create_room, token
from tests.signalling.hub.test_bad_input import PROTO, closed_with, joined, next_reply, ws_url
from tests.waiting import eventually


@pytest.fixture
def capped(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    node = Node(tmp_path / "n", redis_url=redis_url,
                extra_args=["--ws-max-per-user", "2", "--ws-max-per-ip", "4"]).start()  # fmt: skip
    create_room(node.url)
    yield node
    node.stop()


async def test_connection_caps_per_user_and_address(capped: Node) -> None:
    """A third socket of one user is closed 4010; a fifth from one address gets 429;
    closing one frees its place."""
    a = await joined(capped, "viewer", "u1")
    b = await joined(capped, "viewer", "u1")
    third = await websockets.connect(ws_url(capped), subprotocols=PROTO)
    await third.send(msgpack.packb({"t": "hello", "token": token("viewer", "u1")}))
    code, _ = await closed_with(third)
    assert code == 4010
    c = await joined(capped, "viewer", "u2")
    d = await joined(capped, "viewer", "u3")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(ws_url(capped), subprotocols=PROTO)
    assert refused.value.response.status_code == 429
    await d.close()

    async def admitted() -> websockets.ClientConnection | None:  # the node saw the close
        try:
            return await joined(capped, "viewer", "u4")
        except websockets.InvalidStatus:
            return None

    e = await eventually(admitted, within=5, step=0.1, what="a place freed by a close")
    metrics = (await asyncio.to_thread(httpx.get, f"{capped.url}/metrics")).text
    assert 'livecore_refusals_total{limit="ws_ip_cap"}' in metrics
    assert 'livecore_refusals_total{limit="ws_user_cap"} 1.0' in metrics
    for ws in (a, b, c, e):
        await ws.close()


async def test_message_rate_is_per_user(hub_node: Node) -> None:
    """Two sockets of one user share one budget: 2 x 30 likes pass no socket's own
    limit but pass the user's (40 at once)."""
    one = await joined(hub_node, "viewer", "same")
    two = await joined(hub_node, "viewer", "same")
    for i in range(30):
        await one.send(msgpack.packb({"t": "like", "id": i, "n": 1}))
        await two.send(msgpack.packb({"t": "like", "id": 100 + i, "n": 1}))
    replies = [await next_reply(ws) for ws in (one, two) for _ in range(30)]
    refused = [r for r in replies if r["t"] == "error"]
    assert refused and all(r["code"] == "rate_limited" and "id" in r for r in refused)
    await one.close()
    await two.close()


async def test_address_cap_applies_to_each_client_behind_a_trusted_proxy(
    tmp_path: Path, redis_url: str
) -> None:
    """Behind --trusted-proxy the cap counts each forwarded client: a third socket of
    one forwarded address gets 429, another client behind the same proxy still enters."""
    flags = ["--ws-max-per-ip", "2", "--trusted-proxy", "127.0.0.1"]
    node = Node(tmp_path / "p", redis_url=redis_url, extra_args=flags).start()
    try:
        create_room(node.url)

        async def via(client: str) -> websockets.ClientConnection:
            forwarded = {"X-Forwarded-For": client}
            return await websockets.connect(
                ws_url(node), subprotocols=PROTO, additional_headers=forwarded
            )

        first = [await via("203.0.113.7") for _ in range(2)]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await via("203.0.113.7")
        assert refused.value.response.status_code == 429
        other = await via("198.51.100.9, 127.0.0.1")  # the proxy's own hop is skipped
        for ws in (*first, other):
            await ws.close()
    finally:
        node.stop()
