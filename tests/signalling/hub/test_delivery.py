"""Delivery guarantees: recovery without gaps or duplicates, slow consumers, many nodes."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.python.room import ClientError, RoomClient
from livecore.valkey.embedded import EmbeddedValkey
from tests.helpers import Node, create_room, free_port, token
from tests.signalling.hub.conftest import FAST
from tests.waiting import events_within, eventually


async def comments(client: RoomClient, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        event = await client.next_event(wait=15)
        if event["t"] == "comment":
            out.append(event)
    return out


def connections(node: Node) -> float:
    """The node's joined websockets, from its metrics."""
    text = httpx.get(f"{node.url}/metrics").text
    return float(re.findall(r"^livecore_ws_connections (\S+)$", text, re.M)[0])


@pytest.mark.both_stores
async def test_recovery_after_forced_disconnect(connect: Any, hub_node: Node) -> None:
    """A viewer cut off while 30 comments are posted recovers exactly those, then goes on."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    for i in range(5):
        await host.request("comment", text=f"before {i}")
    assert [c["text"] for c in await comments(viewer, 5)] == [f"before {i}" for i in range(5)]
    assert viewer.ws is not None
    viewer.ws.transport.abort()  # the network drops; no closing handshake

    async def only_the_host() -> bool:  # the node noticed the drop
        return await asyncio.to_thread(connections, hub_node) == 1

    await eventually(only_the_host, within=10)
    for i in range(30):
        await host.request("comment", text=f"during {i}")
    answer = await viewer.reconnect()
    assert answer["t"] == "recovered"
    for i in range(5):
        await host.request("comment", text=f"after {i}")
    got = await comments(viewer, 35)
    assert [c["text"] for c in got] == [f"during {i}" for i in range(30)] + [
        f"after {i}" for i in range(5)
    ]
    assert [c["o"] for c in got] == list(range(6, 41))
    # Nothing twice: no comment arrives in a short window after the last one (a
    # duplicate would come in the same or the next broadcast tick, 50 ms apart).
    assert [e for e in await events_within(viewer, 0.3) if e["t"] == "comment"] == []


@pytest.mark.both_stores
async def test_unrecoverable_position_gets_a_fresh_snapshot(connect: Any, hub_node: Node) -> None:
    """A position from another epoch is answered with a snapshot marked recovered=false."""
    host = await connect("host", "host1")
    await host.request("comment", text="hello")
    client = RoomClient(hub_node.url, "r1", token("viewer", "v2"))
    client.epoch, client.offset = "not-the-epoch", 1
    try:
        answer = await client.connect(resume=True)
        assert answer["t"] == "snapshot" and answer["recovered"] is False
        # "hello" is in the snapshot, or (not flushed yet when it was taken) comes live: once.
        texts = [c["text"] for c in answer["comments"]]
        texts += [c["text"] for c in await events_within(client, 0.5) if c["t"] == "comment"]
        assert texts == ["hello"]
    finally:
        await client.close()


def _raw_join(port: int, hello: bytes) -> socket.socket:
    """A websocket client that joins and then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/r1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: livecore.v1\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:  # RFC 6455 §4.1: wait for the 101 before sending
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101")
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(hello))
    assert len(hello) < 65536
    sock.sendall(bytes((0x82, 0x80 | 126)) + len(hello).to_bytes(2, "big") + mask + masked)
    return sock


async def test_slow_consumer_is_cut_off_and_recovers(tmp_path: Path, redis_url: str) -> None:
    """A viewer that stops reading is closed with 4008; the others are not held up."""
    import msgpack

    node = Node(
        tmp_path / "n",
        redis_url=redis_url,
        extra_args=[*FAST, "--ws-send-buffer", "131072", "--comment-max-chars", "500"],
    ).start()
    try:
        create_room(node.url)
        host = RoomClient(node.url, "r1", token("host", "host1"), max_pending=100_000)
        await host.connect()
        fast = RoomClient(node.url, "r1", token("viewer", "fast"), max_pending=100_000)
        await fast.connect()
        stalled = _raw_join(node.port, msgpack.packb({"t": "hello", "token": token("viewer", "s")}))

        async def all_joined() -> bool:  # the stalled viewer's hello was taken
            return await asyncio.to_thread(connections, node) == 3

        await eventually(all_joined, within=10)
        text = "x" * 490
        sent = 0
        # The kernel's socket buffers take a few MB before the node's own buffer fills.
        while "livecore_ws_slow_consumers_total 1.0" not in await asyncio.to_thread(
            _metrics, node.url
        ):
            assert sent < 30_000, "the stalled viewer was never cut off"
            await asyncio.gather(
                *(host.request("comment", text=f"{text}{sent + i}") for i in range(500))
            )
            sent += 500
        got = await comments(fast, sent)
        assert [c["o"] for c in got] == list(range(1, sent + 1))
        # The close frame waits at the end of what was queued: read up to the EOF.
        data = await asyncio.wait_for(_read_to_end(stalled), timeout=30)
        assert b"\x88" in data and (4008).to_bytes(2, "big") in data
        stalled.close()
        await host.close()
        await fast.close()
    finally:
        node.stop()


async def _read_to_end(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the peer closes it (woken by the loop when
    data arrives, no polling)."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    data = b""
    while chunk := await loop.sock_recv(sock, 1 << 20):
        data += chunk
    return data


def _metrics(url: str) -> str:
    import httpx

    return httpx.get(f"{url}/metrics").text


@pytest.mark.both_stores
async def test_two_nodes_same_order(tmp_path: Path, redis_url: str) -> None:
    """Comments sent through node A and node B reach viewers of both in one order."""
    a = Node(tmp_path / "a", redis_url=redis_url, extra_args=FAST).start()
    b = Node(tmp_path / "b", redis_url=redis_url, extra_args=FAST).start()
    clients: list[RoomClient] = []
    try:
        create_room(a.url)
        for node, user in ((a, "va"), (b, "vb"), (a, "ha"), (b, "hb")):
            role = "host" if user.startswith("h") else "viewer"
            client = RoomClient(node.url, "r1", token(role, user))
            await client.connect()
            clients.append(client)
        va, vb, ha, hb = clients
        for i in range(40):
            await asyncio.gather(
                ha.request("comment", text=f"a{i}"), hb.request("comment", text=f"b{i}")
            )
        seen_a = await comments(va, 80)
        seen_b = await comments(vb, 80)
        assert [c["o"] for c in seen_a] == list(range(1, 81))
        assert [(c["o"], c["text"]) for c in seen_a] == [(c["o"], c["text"]) for c in seen_b]
        deadline = asyncio.get_running_loop().time() + 5
        while va.state.get("viewers") != 4:
            assert asyncio.get_running_loop().time() < deadline, va.state
            await va.next_event(wait=5)
    finally:
        for client in clients:
            await client.close()
        a.stop()
        b.stop()


async def test_timed_poll_closes_once_with_two_nodes(tmp_path: Path, redis_url: str) -> None:
    """Both nodes sweep the poll's deadline; exactly one poll_closed is emitted."""
    a = Node(tmp_path / "a", redis_url=redis_url).start()
    b = Node(tmp_path / "b", redis_url=redis_url).start()
    try:
        create_room(a.url)
        host = RoomClient(a.url, "r1", token("host", "host1"))
        viewer = RoomClient(b.url, "r1", token("viewer", "v1"))
        await host.connect()
        await viewer.connect()
        opened = await host.request("poll_open", question="?", options=["x", "y"], duration_s=5)
        await viewer.request("vote", poll=opened["poll"], option=1)
        closes = [e for e in await events_within(viewer, 8.0) if e["t"] == "poll_closed"]
        assert len(closes) == 1 and closes[0]["counts"] == [0, 1]
        await host.close()
        await viewer.close()
    finally:
        a.stop()
        b.stop()


async def test_shutdown_says_going_away(tmp_path: Path, redis_url: str) -> None:
    """SIGTERM closes every websocket with 1001 before the node exits 0."""
    node = Node(tmp_path / "n", redis_url=redis_url).start()
    create_room(node.url)
    viewer = RoomClient(node.url, "r1", token("viewer", "v1"))
    await viewer.connect()
    assert node.proc is not None
    node.proc.send_signal(signal.SIGTERM)
    assert viewer.closed is not None
    code, _ = await asyncio.wait_for(viewer.closed, 10)
    assert code == 1001
    assert await asyncio.to_thread(node.proc.wait, 15) == 0


async def test_valkey_restart_loses_nothing(tmp_path: Path) -> None:
    """Valkey stops and comes back (same data): comments continue with the next offsets."""
    port = free_port()
    store = EmbeddedValkey(tmp_path / "vk", tcp_port=port)
    store.start()
    node = Node(tmp_path / "n", redis_url=store.tcp_url, extra_args=FAST).start()
    try:
        create_room(node.url)
        host = RoomClient(node.url, "r1", token("host", "host1"))
        viewer = RoomClient(node.url, "r1", token("viewer", "v1"))
        await host.connect()
        await viewer.connect()
        for i in range(10):
            await host.request("comment", text=f"one {i}")
        store.stop()
        with pytest.raises(Exception, match="store_unavailable"):
            await host.request("comment", text="lost?")
        store = EmbeddedValkey(tmp_path / "vk", tcp_port=port)
        store.start()

        async def accepted() -> bool:  # the node reconnects to the restarted store
            try:
                await host.request("comment", text="two 0")
            except (ClientError, TimeoutError):  # store_unavailable, or no answer yet
                return False
            return True

        await eventually(accepted, within=15, step=0.2, what="a comment accepted again")
        for i in range(1, 10):
            await host.request("comment", text=f"two {i}")
        got = await comments(viewer, 20)
        assert [c["o"] for c in got] == list(range(1, 21))
        assert [c["text"] for c in got][10:] == [f"two {i}" for i in range(10)]
        await host.close()
        await viewer.close()
    finally:
        node.stop()
        store.stop()
