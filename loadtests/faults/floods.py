"""Floods and malformed traffic against one node; each gets its documented
refusal and the node keeps serving a quiet client meanwhile."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import msgpack
import websockets
from websockets.typing import Subprotocol

from clients.python.room import RoomClient
from loadtests.faults.cluster import NodeProc, Valkey, create_room, mint

PROTO = [Subprotocol("livecore.v1")]


async def _joined(node: NodeProc, user: str) -> Any:
    ws = await websockets.connect(f"{node.ws}/ws/r1", subprotocols=PROTO, max_size=2**24)
    await ws.send(msgpack.packb({"t": "hello", "token": mint("viewer", user)}))
    await ws.recv()
    return ws


async def _close_code(ws: Any) -> int:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except websockets.ConnectionClosed:
        pass
    return int(ws.close_code or 1006)


async def message_flood(node: NodeProc) -> dict[str, Any]:
    """1,000 messages in a second from one client: rate_limited, then 4029. The client
    reads its replies while it sends (a client that stops reading stalls the node's
    closing handshake, which then drops the connection: 1006, not the probe's point)."""
    ws = await _joined(node, "flooder")
    errors = 0

    async def read() -> None:
        nonlocal errors
        try:
            while True:
                reply = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5))
                errors += reply.get("code") == "rate_limited"
        except (websockets.ConnectionClosed, TimeoutError):
            pass

    reader = asyncio.create_task(read())
    for i in range(1000):
        try:
            await ws.send(msgpack.packb({"t": "like", "id": i, "n": 1}))
        except websockets.ConnectionClosed:
            break
        await asyncio.sleep(0.001)
    await reader
    return {"rate_limited": errors, "close": ws.close_code}


async def big_frame(node: NodeProc) -> dict[str, Any]:
    """A 10 MiB frame: closed 1009."""
    ws = await _joined(node, "big")
    try:
        await ws.send(b"\x00" * (10 * 2**20))
    except websockets.ConnectionClosed:
        pass
    return {"close": await _close_code(ws)}


async def text_frame(node: NodeProc) -> dict[str, Any]:
    """A text frame: closed 1003."""
    ws = await _joined(node, "texter")
    await ws.send("hello")
    return {"close": await _close_code(ws)}


def _raw(node: NodeProc, payload: bytes, upgrade: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        if upgrade:
            sock.sendall(
                b"GET /ws/r1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Protocol: livecore.v1\r\n\r\n"
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
        try:
            sock.sendall(payload)
        except OSError:
            return b""
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except OSError:
            pass
        return data


async def garbage_after_upgrade(node: NodeProc) -> dict[str, Any]:
    """Garbage after the upgrade: closed 1002. Not random bytes: those sometimes
    begin like a valid frame header announcing a long payload, and the node then
    rightly waits for it. These set the reserved bits and opcode, and no mask."""
    garbage = b"\xff\x7f" + bytes(range(256)) * 16
    data = await asyncio.to_thread(_raw, node, garbage, True)
    code = int.from_bytes(data[2:4], "big") if len(data) >= 4 and data[0] & 0x0F == 8 else 0
    return {"close": code}


async def huge_headers(node: NodeProc) -> dict[str, Any]:
    """An HTTP request with 100,000 headers: refused (4xx or the connection dropped)."""
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    data = await asyncio.to_thread(_raw, node, request, False)
    status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0
    return {"status": status}


async def sdp_bombs(node: NodeProc) -> dict[str, Any]:
    """SDP with thousands of m-lines or candidates: 400 bad_sdp or 413, quickly."""
    auth = {"Authorization": f"Bearer {mint('host', 'host1')}", "Content-Type": "application/sdp"}
    base = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    mlines = base + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n" * 1000
    cands = (
        base
        + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        + "".join(
            f"a=candidate:{i} 1 udp 1 127.0.0.{i % 250} {1000 + i} typ host\r\n" for i in range(900)
        )
    )
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=20) as http:
        odd = base + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fmtp:96 x\r\n"  # found by fuzzing
        for name, body in (("mlines", mlines), ("candidates", cands), ("fmtp", odd)):
            answer = await http.post(f"{node.url}/whip/r1", content=body, headers=auth)
            out[name] = (answer.status_code, answer.json().get("code"))
    return out


PROBES = (message_flood, big_frame, text_frame, garbage_after_upgrade, huge_headers, sdp_bombs)


async def run(root: Path) -> dict[str, Any]:
    store = Valkey(root)
    store.start()
    node = NodeProc(root / "n", store.url, args=["--ws-message-rate", "20"]).start()
    results: dict[str, Any] = {}
    serving = True
    try:
        create_room(node)
        quiet = RoomClient(node.url, "r1", mint("viewer", "quiet"))
        await quiet.connect()
        fds_before = node.fds()
        rss_before = node.rss_mb()
        for probe in PROBES:
            results[probe.__name__] = await probe(node)
            try:
                await quiet.request("like", n=1, wait=5)
            except Exception:  # the quiet client must keep working
                serving = False
        await quiet.close()
        await asyncio.sleep(1.0)
        results["serving"] = serving
        results["leaked_fds"] = max(0, node.fds() - fds_before)
        results["rss_growth_mb"] = round(max(0.0, node.rss_mb() - rss_before), 1)
        results["crashes"] = node.crashed()
        return results
    finally:
        node.stop()
        store.stop()
