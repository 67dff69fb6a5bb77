"""Orders never stall behind one entry the shop refuses for good."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from clients.python.room import RoomClient
from tests.helpers import Node, create_room, free_port, token
from tests.signalling.services.test_orders import SECRET, webhook_node
from tests.waiting import eventually

OPEN = {"product": "Honey peach 5 kg", "price_cents": 3990, "duration_s": 3600}


class PickyShop:
    """A shop backend on 127.0.0.1 that answers 422 for orders of user ``bad``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: list[dict[str, Any]] = []
        self.refuse_bad = True
        self.lock = threading.Lock()
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with shop.lock:
                    refused = shop.refuse_bad and body.get("user") == "bad"
                    if not refused:
                        shop.accepted.append(body)
                self.send_response(422 if refused else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def users(self) -> list[str]:
        with self.lock:
            return [b.get("user", "") for b in self.accepted if b["type"] == "join"]


async def test_a_refused_order_is_dead_lettered_and_the_rest_flow(
    tmp_path: Path, redis_url: str
) -> None:
    """The shop refuses one order with 422: it moves to the dead letters (metric, admin
    list), every later order is delivered, and a re-drive sends it once the shop is fixed."""
    shop = PickyShop()
    node: Node = webhook_node(tmp_path, redis_url, f"http://127.0.0.1:{shop.port}/hook").start()
    admin = {"Authorization": f"Bearer {token('admin', 'ops')}"}
    clients: list[RoomClient] = []
    web = httpx.AsyncClient()
    try:
        create_room(node.url)
        for role, user in (("host", "host1"), ("viewer", "bad"), ("viewer", "ok1"),
                           ("viewer", "ok2")):  # fmt: skip
            client = RoomClient(node.url, "r1", token(role, user))
            await client.connect()
            clients.append(client)
        host, bad, ok1, ok2 = clients
        gb = (await host.request("groupbuy_open", target=9, scope="room", **OPEN))["gb"]
        await bad.request("groupbuy_join", gb=gb, qty=1)
        await ok1.request("groupbuy_join", gb=gb, qty=1)
        await ok2.request("groupbuy_join", gb=gb, qty=1)
        await eventually(
            lambda: shop.users() == ["ok1", "ok2"], within=15, what="ok1, ok2 delivered"
        )
        dead = (await web.get(f"{node.url}/api/rooms/r1/orders/dead", headers=admin)).json()["dead"]
        assert [(d["user"], d["_status"]) for d in dead] == [("bad", "422")]
        metrics = (await web.get(f"{node.url}/metrics")).text
        assert "livecore_orders_dead_lettered_total 1.0" in metrics
        viewer_token = {"Authorization": f"Bearer {token('viewer', 'ok1')}"}
        refused = await web.post(f"{node.url}/api/rooms/r1/orders/redrive", headers=viewer_token)
        assert refused.status_code == 403
        shop.refuse_bad = False
        again = await web.post(f"{node.url}/api/rooms/r1/orders/redrive", headers=admin)
        assert again.json() == {"redriven": 1}
        await eventually(lambda: "bad" in shop.users(), within=15, what="the re-driven order")
        assert sorted(shop.users()) == ["bad", "ok1", "ok2"]
        left = (await web.get(f"{node.url}/api/rooms/r1/orders/dead", headers=admin)).json()["dead"]
        assert left == []
    finally:
        await web.aclose()
        for client in clients:
            await client.close()
        node.stop()
        shop.server.shutdown()
        shop.server.server_close()


__all__ = ["SECRET"]
