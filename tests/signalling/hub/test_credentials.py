"""A session's credentials: expiry for the life of the session, refresh, revocation."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import msgpack
import websockets

from tests.helpers import Node, token
from tests.signalling.hub.test_bad_input import PROTO, closed_with, next_reply, ws_url


async def hello(node: Node, value: str) -> websockets.ClientConnection:
    ws = await websockets.connect(ws_url(node), subprotocols=PROTO)
    await ws.send(msgpack.packb({"t": "hello", "token": value}))
    return ws


async def test_session_closes_when_its_token_expires(hub_node: Node) -> None:
    """A session outlives no token: 4003 at expiry; no message is acked after it."""
    ws = await hello(hub_node, token("viewer", "v1", ttl=2))
    assert msgpack.unpackb(await ws.recv())["t"] == "snapshot"
    code, reason = await closed_with(ws)
    assert code == 4003 and "expired" in reason


async def test_token_message_refreshes_the_session(hub_node: Node) -> None:
    """An in-band token of the same user and role pushes the expiry back; another
    user's token is refused."""
    first = token("viewer", "v1", ttl=2)
    expires_at = jwt.decode(first, options={"verify_signature": False})["exp"]
    ws = await hello(hub_node, first)
    assert msgpack.unpackb(await ws.recv())["t"] == "snapshot"
    await ws.send(msgpack.packb({"t": "token", "id": 1, "token": token("viewer", "v2")}))
    refused = await next_reply(ws)
    assert refused["t"] == "error" and refused["code"] == "token_wrong_role"
    await ws.send(msgpack.packb({"t": "token", "id": 2, "token": token("viewer", "v1")}))
    ack = await next_reply(ws)
    assert ack["t"] == "ack" and ack["id"] == 2 and ack["exp"] > 0
    # A window in which nothing may happen: the node would close the session (4003) by a
    # timer at the first token's expiry; wait until just past it, then it still answers.
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.3)
    await ws.send(msgpack.packb({"t": "like", "id": 3, "n": 1}))
    assert (await next_reply(ws))["t"] == "ack"
    await ws.close()


async def test_revoked_user_and_token_are_refused(hub_node: Node) -> None:
    """An admin revokes a token id, then a user: their hellos are refused, and the
    user's open session is closed 4005 at once."""
    admin = {"Authorization": f"Bearer {token('admin', 'ops', room='*')}"}
    victim = token("viewer", "v7")
    jti = jwt.decode(victim, options={"verify_signature": False})["jti"]
    async with httpx.AsyncClient() as http:
        made = await http.post(f"{hub_node.url}/api/revocations", json={"jti": jti}, headers=admin)
        assert made.status_code == 201, made.text
        ws = await hello(hub_node, victim)
        code, reason = await closed_with(ws)
        assert code == 4001 and "token_revoked" in reason
        other = await hello(hub_node, token("viewer", "v7"))  # another token of v7: fine
        assert msgpack.unpackb(await other.recv())["t"] == "snapshot"
        await other.send(msgpack.packb({"t": "token", "id": 1, "token": victim}))
        reply = await next_reply(other)  # the revoked token cannot refresh a session
        assert reply["code"] == "token_revoked"
        made = await http.post(f"{hub_node.url}/api/revocations", json={"user": "v7"},
                               headers=admin)  # fmt: skip
        assert made.status_code == 201
        code, reason = await closed_with(other)  # the kill switch: closed at once
        assert code == 4005 and "token_revoked" in reason
        again = await hello(hub_node, token("viewer", "v7"))
        code, reason = await closed_with(again)
        assert code == 4001 and "token_revoked" in reason
        denied = await http.post(
            f"{hub_node.url}/api/revocations",
            json={"user": "v7"},
            headers={"Authorization": f"Bearer {token('host', 'h')}"},
        )
        assert denied.status_code == 403
