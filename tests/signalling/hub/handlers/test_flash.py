"""Flash sales end to end: real nodes, real Valkey, the SDK."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from clients.python.room import ClientError, RoomClient
from livecore.store import keys
from livecore.store.client import connect as store_connect
from livecore.store.replies import as_str
from tests.helpers import Node, create_room, token
from tests.signalling.hub.test_groupbuys import client_for, drain, refused, two_nodes
from tests.signalling.services.test_orders import Receiver, wait_delivered, webhook_node

__all__ = ["client_for", "two_nodes"]  # fixtures used by name

PEACH = {"kind": "product", "name": "Honey peach 5 kg", "price_cents": 3990, "stock": 500}


async def orders(redis_url: str, kind: str) -> list[dict[str, str]]:
    """The room's order records of one type, read straight from Valkey."""
    client = store_connect(redis_url)
    try:
        raw = await client.xrange(keys.room("r1", "orders"))
    finally:
        await client.aclose()
    found = [{as_str(k): as_str(v) for k, v in fields.items()} for _, fields in raw]
    return [o for o in found if o["type"] == kind]


async def test_flash_sale_sells_its_stock_once(
    connect: Any, redis_url: str, hub_node: Node
) -> None:
    """Buys move the stock to 0 and no further; limits, retries and states hold; the
    shop gets one order per buy; the room sees sold out, then ended."""
    host = await connect("host", "host1")
    a = await connect("viewer", "a")
    b = await connect("viewer", "b")
    c = await connect("viewer", "c")
    assert (await refused(host, "flash_start", price_cents=990, stock=3, duration_s=60)).code == (
        "no_pinned_product"
    )
    await host.request("card", **PEACH)
    err = await refused(host, "flash_start", price_cents=3990, stock=3, duration_s=60)
    assert err.code == "invalid_field" and err.message.startswith("price_cents")
    assert (await refused(a, "flash_start", price_cents=990, stock=3, duration_s=60)).code == (
        "token_wrong_role"
    )
    started = await host.request("flash_start", price_cents=990, stock=3, limit=2, duration_s=60)
    fs = started["fs"]
    assert started["ends_at"] - started["starts_at"] == 60
    busy = await refused(host, "flash_start", price_cents=990, stock=3, duration_s=60)
    assert busy.code == "flash_busy"
    assert (await refused(host, "flash_buy", fs=fs)).code == "token_wrong_role"
    first = await a.request("flash_buy", fs=fs, qty=2, key="k1")
    assert (first["mine"], first["sold"], first["left"], first["s"]) == (2, 2, 1, "open")
    again = await a.request("flash_buy", fs=fs, qty=2, key="k1")
    assert (again["mine"], again["sold"], again["left"]) == (2, 2, 1)
    assert (await refused(a, "flash_buy", fs=fs, qty=1)).code == "flash_limit"
    short = await refused(b, "flash_buy", fs=fs, qty=2)
    assert short.code == "flash_sold_out" and "1 left" in short.message
    last = await b.request("flash_buy", fs=fs, qty=1)
    assert (last["sold"], last["left"], last["s"]) == (3, 0, "sold_out")
    assert (await refused(c, "flash_buy", fs=fs)).code == "flash_sold_out"
    assert (await refused(c, "flash_buy", fs="fnope")).code == "flash_not_found"
    for _ in range(25):  # a shopper tapping on after sold out (at a tapping pace, 10/s)
        assert (await refused(c, "flash_buy", fs=fs)).code == "flash_sold_out"
        await asyncio.sleep(0.1)
    assert (await c.request("like", n=1))["n"] == 1  # not closed for "too many errors"
    retried = await a.request("flash_buy", fs=fs, qty=2, key="k1")  # answered by the node now
    assert (retried["mine"], retried["left"], retried["s"]) == (2, 0, "sold_out")
    assert (await refused(a, "flash_buy", fs=fs, qty=1, key="k9")).code == "flash_sold_out"
    assert (await refused(host, "flash_buy", fs=fs)).code == "token_wrong_role"  # still
    seen = await drain(c, 1.0)
    flash_events = [e["t"] for e in seen if e["t"].startswith("flash_")]
    assert flash_events == ["flash_started", "flash_sold_out"]
    assert c.state["flash"]["left"] == 0 and c.state["flash"]["s"] == "sold_out"
    ended = await host.request("flash_stop", fs=fs)
    assert (ended["s"], ended["sold"]) == ("ended", 3)
    assert (await refused(host, "flash_stop", fs=fs)).code == "flash_not_found"
    assert (await refused(a, "flash_buy", fs=fs)).code == "flash_ended"
    assert (await a.request("flash_buy", fs=fs, qty=2, key="k1"))["mine"] == 2
    seen = await drain(c, 1.0)
    assert [e["t"] for e in seen if e["t"].startswith("flash_")] == ["flash_ended"]
    bought = await orders(redis_url, "flash")
    assert [(o["user"], o["qty"], o["unit_cents"]) for o in bought] == [
        ("a", "2", "990"), ("b", "1", "990")
    ]  # fmt: skip
    assert len(await orders(redis_url, "flash_ended")) == 1
    late = await connect("viewer", "late")
    assert late.snapshot["flash"]["fs"] == fs and late.snapshot["flash"]["s"] == "ended"
    assert late.snapshot["my_flash"] == {}
    assert (await connect("viewer", "a")).snapshot["my_flash"] == {fs: 2}  # a reload knows
    bearer = {"Authorization": f"Bearer {token('host', 'host1')}"}
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{hub_node.url}/api/rooms/r1/dashboard", headers=bearer)
    figures = answer.json()["flash"]
    assert (figures["sold"], figures["stock"], figures["sales_cents"]) == (3, 3, 2970)


async def test_countdown_and_end_by_time(connect: Any) -> None:
    """Before the countdown ends a tap is refused; the sweep ends the sale on time."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    await host.request("card", **PEACH)
    started = await host.request("flash_start", price_cents=990, stock=5, countdown_s=2,
                                 duration_s=10)  # fmt: skip
    fs = started["fs"]
    assert (await refused(viewer, "flash_buy", fs=fs)).code == "flash_not_started"
    while True:  # the countdown runs on the wall clock: tap until it opens
        try:
            assert (await viewer.request("flash_buy", fs=fs))["mine"] == 1
            break
        except ClientError as err:
            assert err.code == "flash_not_started" and time.time() < started["starts_at"] + 2
            await asyncio.sleep(0.1)  # paces the taps: the answer is what changes
    assert time.time() >= started["starts_at"]
    deadline = asyncio.get_running_loop().time() + 15
    while (viewer.state.get("flash") or {}).get("s") != "ended":
        assert asyncio.get_running_loop().time() < deadline, viewer.state.get("flash")
        await viewer.next_event(wait=deadline - asyncio.get_running_loop().time())


async def test_two_nodes_race_for_the_stock(two_nodes: tuple[Node, Node], client_for: Any,
                                            redis_url: str) -> None:  # fmt: skip
    """Forty buyers over two nodes race for ten units: exactly ten sold, each buyer at
    most their limit, the other node's viewers see the same final state."""
    a, b = two_nodes
    host = await client_for(a, "host", "host1")
    await host.request("card", **PEACH)
    fs = (await host.request("flash_start", price_cents=990, stock=10, limit=1,
                             duration_s=60))["fs"]  # fmt: skip
    buyers = [await client_for(a if i % 2 else b, "viewer", f"u{i}") for i in range(40)]

    async def tap(client: Any) -> str:
        try:
            await client.request("flash_buy", fs=fs, key="once")
            return "bought"
        except Exception as exc:  # ClientError: its code
            return str(getattr(exc, "code", exc))

    results = await asyncio.gather(*(tap(c) for c in buyers))
    assert results.count("bought") == 10 and set(results) == {"bought", "flash_sold_out"}
    bought = await orders(redis_url, "flash")
    assert len(bought) == 10 and len({o["user"] for o in bought}) == 10
    watcher = buyers[0]
    deadline = asyncio.get_running_loop().time() + 5
    while (watcher.state.get("flash") or {}).get("left") != 0:
        assert asyncio.get_running_loop().time() < deadline, watcher.state.get("flash")
        await watcher.next_event(wait=deadline - asyncio.get_running_loop().time())


async def test_flash_orders_reach_the_shops_webhook(tmp_path: Path, redis_url: str) -> None:
    """The sale's start, each buy and its end are POSTed to the shop (signed, once each)."""
    receiver = Receiver().start()
    node = webhook_node(tmp_path, redis_url, receiver.url).start()
    try:
        create_room(node.url)
        async with (
            RoomClient(node.url, "r1", token("host", "host1")) as host,
            RoomClient(node.url, "r1", token("viewer", "shopper")) as shopper,
        ):
            await host.request("card", **PEACH)
            fs = (await host.request("flash_start", price_cents=990, stock=5, limit=2,
                                     duration_s=60))["fs"]  # fmt: skip
            await shopper.request("flash_buy", fs=fs, qty=2, key="tap-1")
            await host.request("flash_stop", fs=fs)
        await wait_delivered(receiver, redis_url, 20)
    finally:
        node.stop()
        receiver.stop()
    bodies = [json.loads(d.body) for d in receiver.snapshot() if d.status == 200]
    assert [b["type"] for b in bodies] == ["flash_started", "flash", "flash_ended"]
    buy = bodies[1]
    assert (buy["fs"], buy["user"], buy["qty"], buy["unit_cents"], buy["total_cents"]) == (
        fs, "shopper", 2, 990, 1980)  # fmt: skip
    assert buy["product"] == PEACH["name"] and buy["key"] == "tap-1" and buy["coupon"] == ""
    assert (bodies[0]["stock"], bodies[0]["limit"], bodies[2]["sold"]) == (5, 2, 2)
