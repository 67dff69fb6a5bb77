"""The orders webhook end to end: a real node POSTs to a real HTTP receiver, at least once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from clients.python.room import RoomClient
from livecore.store import index, keys
from livecore.store.client import connect
from livecore.store.replies import as_str
from tests.helpers import Node, create_room, free_port, token
from tests.signalling.hub.conftest import FAST
from tests.waiting import eventually

SECRET = b"s3cret"
OPEN = {"product": "Honey peach 5 kg", "price_cents": 3990, "duration_s": 3600}


@dataclass
class Delivery:
    """One POST the receiver got, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A shop backend on 127.0.0.1 that answers 500 to its first ``fail_first`` requests."""

    fail_first: int = 0
    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = 500 if len(receiver.deliveries) < receiver.fail_first else 200
                    receiver.deliveries.append(
                        Delivery(self.path, dict(self.headers.items()), body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def accepted_keys(self) -> set[str]:
        return {d.headers["Idempotency-Key"] for d in self.snapshot() if d.status == 200}


def webhook_node(tmp_path: Path, redis_url: str, url: str) -> Node:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET.decode() + "\n")
    args = [*FAST, "--orders-webhook", url, "--orders-webhook-secret-file", str(secret_file),
            "--orders-webhook-allow-http"]  # fmt: skip
    return Node(tmp_path / "node", redis_url=redis_url, extra_args=args)


async def stream_orders(redis_url: str, room: str = "r1") -> dict[str, dict[str, str]]:
    """The room's orders stream: ``room:id`` → fields (as the webhook's id names them)."""
    client = connect(redis_url)
    try:
        raw = await client.xrange(keys.room(room, "orders"))
    finally:
        await client.aclose()
    return {f"{room}:{as_str(eid)}": {as_str(k): as_str(v) for k, v in f.items()} for eid, f in raw}


async def pending(redis_url: str, room: str = "r1") -> int:
    """Orders the forwarder has read and not yet delivered (0 before its group exists)."""
    client = connect(redis_url)
    try:
        summary = await client.xpending(keys.room(room, "orders"), "webhook")
    except ResponseError as exc:  # NOGROUP: the forwarder has not reached this stream yet
        assert "NOGROUP" in str(exc), exc
        return 0
    finally:
        await client.aclose()
    return int(summary["pending"])


async def wait_delivered(receiver: Receiver, redis_url: str, seconds: float) -> None:
    """Until every order in the stream was accepted by the receiver and none is pending."""
    deadline = time.monotonic() + seconds
    while True:
        orders = await stream_orders(redis_url)
        if orders and set(orders) <= receiver.accepted_keys() and not await pending(redis_url):
            return
        missing = set(orders) - receiver.accepted_keys()
        assert time.monotonic() < deadline, f"{len(missing)} of {len(orders)} never delivered"
        await asyncio.sleep(0.2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver(fail_first=3).start()
    yield started
    started.stop()


async def make_orders(node: Node, redis_url: str) -> None:
    """Joins, a quantity change, a leave, a formed group and (deadline moved) a failed one."""
    clients: list[RoomClient] = []

    async def viewer(user: str, community: str) -> RoomClient:
        client = RoomClient(node.url, "r1", token("viewer", user, community=community))
        await client.connect()
        clients.append(client)
        return client

    try:
        host = RoomClient(node.url, "r1", token("host", "host1"))
        await host.connect()
        clients.append(host)
        gb = (await host.request("groupbuy_open", target=3, **OPEN))["gb"]
        xs = [await viewer(f"x{i}", "hz-xixi-chengyuan") for i in range(4)]
        ys = [await viewer(f"y{i}", "hz-cuiyuan-1") for i in range(2)]
        await ys[0].request("groupbuy_join", gb=gb, qty=2)
        await ys[0].request("groupbuy_join", gb=gb, qty=2)  # a retry: no new order
        await ys[1].request("groupbuy_join", gb=gb, qty=1)
        await ys[1].request("groupbuy_leave", gb=gb)
        await xs[0].request("groupbuy_join", gb=gb, qty=1)
        await xs[0].request("groupbuy_join", gb=gb, qty=3)  # change
        await asyncio.gather(*(x.request("groupbuy_join", gb=gb, qty=1) for x in xs[1:]))
        store = connect(redis_url)
        try:
            # duration_s is at least 60 s: move the deadline to the past in Valkey itself.
            past = int(time.time()) - 1
            await store.hset(keys.room("r1", f"gb:{gb}"), "deadline", past)
            await index.ScoredIndex(store, index.DUE).add(f"r1|{gb}", past)
        finally:
            await store.aclose()
        deadline = time.monotonic() + 8
        while not any(o["type"] == "failed" for o in (await stream_orders(redis_url)).values()):
            assert time.monotonic() < deadline, "the deadline sweep never failed the group"
            await asyncio.sleep(0.2)
    finally:
        for client in clients:
            await client.close()


@pytest.mark.both_stores
async def test_every_order_delivered_signed_and_retried(
    tmp_path: Path, redis_url: str, receiver: Receiver
) -> None:
    """First 3 POSTs fail: every order still arrives, signed, same key on retry."""
    node = webhook_node(tmp_path, redis_url, receiver.url).start()
    try:
        create_room(node.url)
        await make_orders(node, redis_url)
        await wait_delivered(receiver, redis_url, 28)
    finally:
        node.stop()
    orders = await stream_orders(redis_url)
    types = sorted(o["type"] for o in orders.values())
    assert types == ["failed"] + ["formed"] + ["join"] * 7 + ["leave"]
    got = receiver.snapshot()
    assert [d.status for d in got[:3]] == [500, 500, 500]
    assert {d.headers["Idempotency-Key"] for d in got[:3]} <= receiver.accepted_keys()
    assert receiver.accepted_keys() == set(orders)
    assert len({d.headers["Idempotency-Key"] for d in got}) == len(orders)
    for delivery in got:
        assert delivery.path == "/hook"
        expected = "sha256=" + hmac.new(SECRET, delivery.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery.headers["X-Livecore-Signature"], expected)
        assert delivery.headers["Content-Type"] == "application/json"
        body = json.loads(delivery.body)
        key = delivery.headers["Idempotency-Key"]
        assert body["id"] == key and body["room"] == "r1"
        assert delivery.headers["X-Livecore-Event"] == body["type"]
        assert delivery.headers["X-Livecore-Timestamp"] == str(body["sent_at"])
        assert abs(body["sent_at"] - time.time()) < 120
        fields = {k: v for k, v in body.items() if k not in ("id", "room", "sent_at")}
        assert {k: str(v) for k, v in fields.items()} == orders[key]
    for key in {d.headers["Idempotency-Key"] for d in got}:
        bodies = {json.loads(d.body)["type"] for d in got if d.headers["Idempotency-Key"] == key}
        assert len(bodies) == 1  # a retry is the same order
    joins = [json.loads(d.body) for d in got if d.status == 200]
    x0 = [(b["qty"], b["version"]) for b in joins if b.get("user") == "x0"]
    assert sorted(set(x0)) == [(1, 1), (3, 2)]


async def test_receiver_down_then_up_loses_nothing(tmp_path: Path, redis_url: str) -> None:
    """Orders made while the backend refuses connections are delivered once it is up."""
    receiver = Receiver()
    node = webhook_node(tmp_path, redis_url, receiver.url).start()
    try:
        create_room(node.url)
        host = RoomClient(node.url, "r1", token("host", "host1"))
        await host.connect()
        gb = (await host.request("groupbuy_open", target=50, scope="room", **OPEN))["gb"]
        viewers = [RoomClient(node.url, "r1", token("viewer", f"v{i}")) for i in range(12)]
        for viewer in viewers:
            await viewer.connect()
        await asyncio.gather(*(v.request("groupbuy_join", gb=gb, qty=1) for v in viewers))
        assert len(await stream_orders(redis_url)) == 12
        # The forwarder has read the orders and failed to deliver them (they stay pending).
        await eventually(lambda: pending(redis_url), within=20, what="orders pending delivery")
        receiver.start()
        await wait_delivered(receiver, redis_url, 25)
        assert receiver.accepted_keys() == set(await stream_orders(redis_url))
        for client in (host, *viewers):
            await client.close()
    finally:
        node.stop()
        receiver.stop()


async def test_numeric_looking_ids_stay_strings(tmp_path: Path, redis_url: str) -> None:
    """A user id of digits ('007') reaches the webhook as the string '007'."""
    receiver = Receiver().start()
    node = webhook_node(tmp_path, redis_url, receiver.url).start()
    try:
        create_room(node.url)
        host = RoomClient(node.url, "r1", token("host", "host1"))
        await host.connect()
        gb = (await host.request("groupbuy_open", target=5, scope="room", **OPEN))["gb"]
        viewer = RoomClient(node.url, "r1", token("viewer", "007"))
        await viewer.connect()
        await viewer.request("groupbuy_join", gb=gb, qty=1)
        await wait_delivered(receiver, redis_url, 10)
        (body,) = [json.loads(d.body) for d in receiver.snapshot()]
        await host.close()
        await viewer.close()
    finally:
        node.stop()
        receiver.stop()
    assert body["user"] == "007"
