"""The shop's receipt callback on a real node: signed, idempotent, commission follows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from clients.python.room import RoomClient
from signalling.routes.receipts import signed_payload
from signalling.services.orders import sign
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST
from tests.signalling.hub.test_groupbuys import raw_join

SECRET = "shop-s3cret"
OPEN = {"product": "Honey peach 5 kg", "price_cents": 1000, "duration_s": 3600, "target": 2}


def post(
    node: Node, body: dict[str, object], *, secret: str = SECRET, skew: int = 0
) -> httpx.Response:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()) + skew)
    headers = {
        "Content-Type": "application/json",
        "X-Livecore-Timestamp": stamp,
        "X-Livecore-Signature": sign(secret.encode(), signed_payload(stamp, raw)),
    }
    return httpx.post(f"{node.url}/api/rooms/r1/receipts", content=raw, headers=headers)


async def test_receipt_confirms_and_refund_reverses(tmp_path: Path, redis_url: str) -> None:
    """pending → confirmed by a signed receipt, repeat harmless; refund after → reversed;
    bad signature, old timestamp, unknown order and bad fields refused, nothing changed."""
    args = [*FAST, "--orders-webhook", "https://127.0.0.1:9/none",
            "--orders-webhook-secret", SECRET]  # fmt: skip
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=args).start()
    clients: list[RoomClient] = []
    try:
        create_room(node.url)
        for role, user in (("host", "host1"), ("viewer", "off"), ("viewer", "m1"),
                           ("viewer", "m2")):  # fmt: skip
            client = RoomClient(node.url, "r1", token(role, user))
            await client.connect()
            clients.append(client)
        host, off, m1, m2 = clients
        own = await host.request("groupbuy_open", **{**OPEN, "scope": "room", "target": 9})
        await off.request("groupbuy_join", gb=own["gb"], qty=1)
        code = (await off.request("officer_apply"))["code"]
        referred, _ = await raw_join(node, "m1", code)
        await referred.close()
        gb = (await host.request("groupbuy_open", **{**OPEN, "scope": "room"}))["gb"]
        await m1.request("groupbuy_join", gb=gb, qty=2)
        await m2.request("groupbuy_join", gb=gb, qty=1)
        me = await off.request("officer_me")
        assert (me["pending_cents"], me["confirmed_cents"]) == (400, 0)
        order = {"gb": gb, "group": "room", "user": "m1", "outcome": "received"}
        assert post(node, order, secret="wrong").json()["code"] == "token_bad_signature"
        assert post(node, order, skew=-600).json()["code"] == "token_expired"
        bad = post(node, {**order, "outcome": "lost"})
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_field")
        ghost = post(node, {**order, "user": "m9"})
        assert (ghost.status_code, ghost.json()["code"]) == (404, "order_not_found")
        assert (await off.request("officer_me"))["pending_cents"] == 400
        first = post(node, order)
        assert first.status_code == 200 and first.json() == {
            "changed": True,
            "commission": "confirmed",
        }
        assert post(node, order).json() == {"changed": False, "commission": "confirmed"}
        no_commission = post(node, {**order, "user": "m2"})
        assert no_commission.json() == {"changed": False, "commission": "none"}
        me = await off.request("officer_me")
        assert (me["pending_cents"], me["confirmed_cents"]) == (0, 400)
        refund = post(node, {**order, "outcome": "refunded"})
        assert refund.json() == {"changed": True, "commission": "refunded"}
        again = post(node, order)
        assert (again.status_code, again.json()["code"]) == (409, "order_refunded")
        me = await off.request("officer_me")
        assert (me["pending_cents"], me["confirmed_cents"], me["earned_cents"]) == (0, 0, 0)
    finally:
        for client in clients:
            await client.close()
        node.stop()


def test_receipts_need_the_secret(node: Node) -> None:
    """Without the orders webhook secret the endpoint does not exist for anyone."""
    answer = post(node, {"gb": "g1", "group": "room", "user": "m1", "outcome": "received"})
    assert answer.status_code == 404 and "secret" in answer.json()["message"]
