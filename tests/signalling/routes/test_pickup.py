"""Pickup codes on a real node: the buyer's code, redeemed once by the counter, the shop
told, the officer's commission confirmed."""

from __future__ import annotations

from pathlib import Path

import httpx

from clients.python.room import RoomClient
from livecore.store import keys
from livecore.store.client import open_store
from livecore.store.replies import as_str
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST
from tests.signalling.hub.test_groupbuys import raw_join
from tests.signalling.routes.test_receipts import SECRET
from tests.signalling.routes.test_receipts import post as receipt

OPEN = {"product": "Honey peach 5 kg", "price_cents": 1000, "duration_s": 3600, "target": 2,
        "scope": "room"}  # fmt: skip


def call(node: Node, path: str, tok: str, body: object) -> httpx.Response:
    return httpx.post(f"{node.url}/api/rooms/r1/pickup/{path}", json=body,
                      headers={"Authorization": f"Bearer {tok}"})  # fmt: skip


async def shop(node: Node, clients: list[RoomClient]) -> str:
    """Room r1 with its host, an officer ``off`` who referred ``m1``, and ``m2``
    (connected into ``clients`` in that order): a group buy of two, ``m1`` buying
    through the officer's link. Returns the group buy's id."""
    create_room(node.url)
    for role, user in (("host", "host1"), ("viewer", "off"), ("viewer", "m1"),
                       ("viewer", "m2")):  # fmt: skip
        client = RoomClient(node.url, "r1", token(role, user))
        await client.connect()
        clients.append(client)
    host, off = clients[0], clients[1]
    own = await host.request("groupbuy_open", **{**OPEN, "target": 9})
    await off.request("groupbuy_join", gb=own["gb"], qty=1)
    ref = (await off.request("officer_apply"))["code"]
    referred, _ = await raw_join(node, "m1", ref)
    await referred.close()
    return str((await host.request("groupbuy_open", **OPEN))["gb"])


async def test_a_code_redeems_once_and_confirms_the_commission(
    tmp_path: Path, redis_url: str
) -> None:
    """Formed → code (same every time); the pickup role redeems it once; the orders
    stream has one pickup; commission pending → confirmed; every refusal changes nothing."""
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=FAST).start()
    clients: list[RoomClient] = []
    store = await open_store(redis_url)
    try:
        gb = await shop(node, clients)
        _, off, m1, m2 = clients
        await m1.request("groupbuy_join", gb=gb, qty=2)
        early = call(node, "code", token("viewer", "m1"), {"gb": gb})
        assert (early.status_code, early.json()["code"]) == (404, "order_not_found")
        await m2.request("groupbuy_join", gb=gb, qty=1)
        mine = call(node, "code", token("viewer", "m1"), {"gb": gb}).json()
        assert mine["qty"] == 2 and mine["group"] == "room" and mine["redeemed"] is None
        assert call(node, "code", token("viewer", "m1"), {"gb": gb}).json()["code"] == mine["code"]
        stranger = call(node, "code", token("viewer", "m9"), {"gb": gb})
        assert (stranger.status_code, stranger.json()["code"]) == (403, "not_a_buyer")
        counter = token("pickup", "counter1")
        assert (
            call(node, "redeem", token("viewer", "m1"), {"code": mine["code"]}).status_code == 403
        )
        elsewhere = call(node, "redeem", token("pickup", "c2", room="r2"), {"code": mine["code"]})
        assert elsewhere.json()["code"] == "token_wrong_room"
        bad = call(node, "redeem", counter, {"code": "12ab"})
        assert (bad.status_code, bad.json()["code"]) == (422, "invalid_field")
        wrong = "0" * 10 if mine["code"] != "0" * 10 else "1" * 10
        assert call(node, "redeem", counter, {"code": wrong}).json()["code"] == "pickup_not_found"
        assert (await off.request("officer_me"))["pending_cents"] == 400
        typed = mine["shown"].replace(" ", "-")
        done = call(node, "redeem", counter, {"code": typed})
        assert done.status_code == 200, done.text
        assert done.json() == {"redeemed": True, "gb": gb, "group": "room", "user": "m1",
                               "qty": 2, "commission": "confirmed"}  # fmt: skip
        twice = call(node, "redeem", counter, {"code": mine["code"]})
        assert (twice.status_code, twice.json()["code"]) == (409, "pickup_redeemed")
        me = await off.request("officer_me")
        assert (me["pending_cents"], me["confirmed_cents"]) == (0, 400)
        orders = await store.xrange(keys.room("r1", "orders"))
        pickups = [{as_str(k): as_str(v) for k, v in f.items()} for _, f in orders
                   if f[b"type"] == b"pickup"]  # fmt: skip
        assert len(pickups) == 1 and pickups[0]["user"] == "m1" and pickups[0]["by"] == "counter1"
        later = call(node, "code", token("viewer", "m1"), {"gb": gb}).json()
        assert later["redeemed"]["by"] == "counter1"
    finally:
        for client in clients:
            await client.close()
        await store.aclose()
        node.stop()


async def test_a_refunded_order_gets_no_goods(tmp_path: Path, redis_url: str) -> None:
    """The shop refunds two formed orders (one with a commission, one without): the
    code issued before the refund is refused at the counter and nothing changes
    (no redemption, no pickup order event); neither buyer can ask for a code after."""
    args = [*FAST, "--orders-webhook", "https://127.0.0.1:9/none",
            "--orders-webhook-secret", SECRET]  # fmt: skip
    node = Node(tmp_path / "node", redis_url=redis_url, extra_args=args).start()
    clients: list[RoomClient] = []
    store = await open_store(redis_url)
    try:
        gb = await shop(node, clients)
        _, off, m1, m2 = clients
        await m1.request("groupbuy_join", gb=gb, qty=2)
        await m2.request("groupbuy_join", gb=gb, qty=1)
        plain = call(node, "code", token("viewer", "m2"), {"gb": gb}).json()["code"]
        for user in ("m1", "m2"):
            order = {"gb": gb, "group": "room", "user": user, "outcome": "refunded"}
            refund = receipt(node, order)
            assert refund.status_code == 200 and refund.json()["changed"] is True, refund.text
            assert receipt(node, order).json()["changed"] is False
            late = receipt(node, {**order, "outcome": "received"})
            assert (late.status_code, late.json()["code"]) == (409, "order_refunded")
        before = await store.hgetall(keys.room("r1", "pickup:stats"))
        counter = token("pickup", "counter1")
        refused = call(node, "redeem", counter, {"code": plain})
        assert (refused.status_code, refused.json()["code"]) == (409, "order_refunded")
        assert await store.hgetall(keys.room("r1", "pickup:stats")) == before
        assert await store.hlen(keys.room("r1", "pickup:done")) == 0
        orders = await store.xrange(keys.room("r1", "orders"))
        assert not [f for _, f in orders if f[b"type"] == b"pickup"]
        for user in ("m1", "m2"):
            asked = call(node, "code", token("viewer", user), {"gb": gb})
            assert (asked.status_code, asked.json()["code"]) == (409, "order_refunded")
        me = await off.request("officer_me")
        assert (me["pending_cents"], me["confirmed_cents"]) == (0, 0)
    finally:
        for client in clients:
            await client.close()
        await store.aclose()
        node.stop()
