"""The role × endpoint matrix of the HTTP API, generated from one table: 'Who may call
each endpoint' in docs/protocol.md. It fails when that table and the server's routes
disagree, and drives one real node through every row × every kind of credential
(tests/faults/http_roles_table.py), asserting the documented status and code, and
that a row's refused requests changed nothing (its probe reads the same before and
after them)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import msgpack
import pytest
import redis
import websockets
from starlette.routing import Route
from websockets.typing import Subprotocol

from signalling.app import routes
from signalling.services.orders import sign
from tests.faults import http_endpoints as ep
from tests.faults.http_roles_table import (
    KINDS,
    REVOKED_USER,
    SHOP_KEY,
    credential,
    documented_rows,
    expected,
    forge,
)
from tests.helpers import Node
from tests.media.sources import Viewer, encode_video_clip, publisher_offer

ROWS = {row.key: row for row in documented_rows()}


def test_the_table_lists_every_route() -> None:
    """Each HTTP route of the app has exactly one row in the table, and each row a route."""
    served = {f"{m} {r.path}" for r in routes() if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD"}  # fmt: skip
    assert sorted(ROWS) == sorted(served)
    assert len(ROWS) == len(documented_rows()), "a row appears twice"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, valkey_server: object) -> Iterator[Node]:
    """One node for the whole matrix, with its rooms, batch and revoked user set up."""
    url = valkey_server.tcp_url  # type: ignore[attr-defined]
    redis.Redis.from_url(url).flushall()
    env = {"LIVECORE_ORDERS_WEBHOOK_SECRET": ep.WEBHOOK_SECRET}
    started = Node(tmp_path_factory.mktemp("matrix") / "node", redis_url=url, extra_env=env)
    (started.data_dir / "keys").mkdir(parents=True)
    (started.data_dir / "keys" / "shop-m.json").write_text(json.dumps(SHOP_KEY))
    started.start()
    ep.set_up(started.url, REVOKED_USER)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def offers() -> dict[str, str]:
    """A real publisher offer (for WHIP) and a real viewer offer (for WHEP)."""
    import asyncio

    async def make() -> dict[str, str]:
        pc, publish = await publisher_offer([encode_video_clip("video/H264", frames=2, gop=2)])
        viewer = Viewer()
        play = await viewer.offer()
        await pc.close()
        await viewer.close()
        return {"whip": publish, "whep": play}

    return asyncio.run(make())


_addresses = iter(range(1, 60_000))
#: One TLS context for every client (httpx builds one per client otherwise: ~50 ms each).
_TLS = ep.TLS


def client() -> httpx.AsyncClient:
    """A client from its own loopback address (127.1.x.y): the node's per-address
    limits (5 writes/s, 2 media POSTs/s) are the node's to keep, not the matrix's."""
    n = next(_addresses)
    address = f"127.1.{n // 250}.{n % 250 + 1}"
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=_TLS)
    return httpx.AsyncClient(transport=transport, timeout=10, verify=_TLS)


def signed_headers(body: bytes) -> dict[str, str]:
    """The orders webhook's signature headers for ``body``."""
    stamp = str(int(time.time()))
    signature = sign(ep.WEBHOOK_SECRET.encode(), stamp.encode() + b"." + body)
    return {"X-Livecore-Timestamp": stamp, "X-Livecore-Signature": signature}


async def snapshot_offset(base: str, room: str) -> int:
    """The room's last offset, as a joining viewer's snapshot says."""
    uri = base.replace("http", "ws", 1) + f"/ws/{room}"
    async with websockets.connect(uri, subprotocols=[Subprotocol("livecore.v1")]) as ws:
        await ws.send(msgpack.packb({"t": "hello", "token": forge("viewer", "prober", room)}))
        snapshot = msgpack.unpackb(await ws.recv())
    assert snapshot["t"] == "snapshot"
    return int(snapshot["offset"])


def error_code(answer: httpx.Response) -> str | None:
    if answer.status_code < 400 or "json" not in answer.headers.get("content-type", ""):
        return None
    code = answer.json().get("code")
    return str(code) if code is not None else None


@pytest.mark.parametrize("key", sorted(ROWS))
async def test_every_cell_of_the_row(node: Node, offers: dict[str, str], key: str) -> None:
    """Each kind of credential on this endpoint gets what the table says; the refused
    ones change nothing."""
    row, spec = ROWS[key], ep.SPECS.get(key)
    assert spec is not None, f"{key} is in the table but the matrix has no request for it"
    env = ep.Env(node.url, offers, snapshot_offset)
    cells = []
    for kind in KINDS:
        if kind == "signed" and not row.signed:
            continue
        want = expected(row, kind, spec.ok)
        accepted = want == spec.ok and (kind == "signed" or not row.signed)
        cells.append((kind, want, accepted))
    cells.sort(key=lambda cell: cell[2])  # the refused first, between the two probes
    refused_scope = await spec.scope_of(env, 0, False)
    before = await spec.probe(env, refused_scope) if spec.probe else None
    seen, probed = [], False
    for n, (kind, want, accepted) in enumerate(cells, 1):
        if accepted and not probed and spec.probe:
            probed = True
            after = await spec.probe(env, refused_scope)
            assert after == before, f"{key}: refused requests changed {before!r} to {after!r}"
        scope = await spec.scope_of(env, n, True) if accepted else refused_scope
        try:
            token = credential(row, kind, scope, f"u{n}-{kind.replace('*', 'x')}")
        except LookupError:
            continue  # no such credential for this row (another room of a room-less path)
        request = spec.request(env, scope, n, accepted)
        headers = dict(request.headers)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if kind == "signed":
            headers.update(signed_headers(request.content))
        async with client() as http:
            answer = await http.request(row.method, node.url + request.path,
                                        content=request.content, headers=headers)  # fmt: skip
        seen.append((kind, answer.status_code, error_code(answer), want))
    wrong = [cell for cell in seen if cell[1:3] != cell[3]]
    assert not wrong, f"{key}: (kind, status, code, expected) {wrong}"
