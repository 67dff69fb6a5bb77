"""``--record-trace``: the room channel's traffic becomes anonymised audience traces."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import msgpack

from clients.python.room import RoomClient
from livecore import wire
from livecore.audience.trace import Kind, read_trace
from signalling.hub.traffic import event_of
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST

OPEN = {"product": "Peach", "price_cents": 1000, "duration_s": 600, "target": 5, "scope": "room"}


def _m(fields: dict[str, object]) -> wire.Message:
    return wire.decode(msgpack.packb(fields))


def test_what_the_trace_keeps_of_each_message() -> None:
    """Comments keep their text for the recorder to measure; counts keep their shape;
    a product card is a pin with its price; other cards and types are not traffic."""
    assert event_of(_m({"t": "comment", "text": "好吃"})) == (Kind.COMMENT, 0, "好吃")
    assert event_of(_m({"t": "like", "n": 7})) == (Kind.LIKE, 7, None)
    assert event_of(_m({"t": "vote", "poll": "p1", "option": 2})) == (Kind.VOTE, 2, None)
    assert event_of(_m({"t": "groupbuy_join", "gb": "g1", "qty": 3})) == (Kind.GROUP_JOIN, 3, None)
    card = {"t": "card", "kind": "product", "name": "Peach", "price_cents": 990}
    assert event_of(_m(card)) == (Kind.PRODUCT_PIN, 990, None)
    testimonial = {"t": "card", "kind": "testimonial", "author": "A", "text": "good"}
    assert event_of(_m(testimonial)) is None
    assert event_of(_m({"t": "officer_me"})) is None


async def test_a_recorded_room_has_its_traffic_and_no_user_ids(
    tmp_path: Path, redis_url: str
) -> None:
    """Joins, comments, likes, group joins, a pin and a price drop, leaves: all in the
    file written at shutdown; no user id, no comment text, one client per person."""
    out = tmp_path / "traces"
    node = Node(tmp_path / "node", redis_url=redis_url,
                extra_args=[*FAST, "--record-trace", str(out)]).start()  # fmt: skip
    try:
        create_room(node.url)
        host = RoomClient(node.url, "r1", token("host", "host1"))
        await host.connect()
        gb = (await host.request("groupbuy_open", **OPEN))["gb"]
        await host.request("card", kind="product", name="Peach", price_cents=1200)
        await host.request("card", kind="product", name="Peach", price_cents=990)
        viewers = [
            RoomClient(node.url, "r1", token("viewer", f"secret-user-{i}")) for i in range(3)
        ]
        for i, viewer in enumerate(viewers):
            await viewer.connect()
            await viewer.request("comment", text="这个桃子甜吗" * (i + 1))
            await viewer.request("like", n=5)
            await viewer.request("groupbuy_join", gb=gb, qty=1)
        for client in (*viewers, host):
            await client.close()
    finally:
        assert node.stop() == 0
    (path,) = sorted(out.glob("r1-*.lctrace"))
    raw = path.read_bytes()
    trace = read_trace(path)
    kinds = Counter(e.kind for e in trace.events)
    assert kinds[Kind.JOIN] == 4 and kinds[Kind.COMMENT] == 3 and kinds[Kind.LIKE] == 3
    assert kinds[Kind.GROUP_JOIN] == 3 and kinds[Kind.GROUPBUY_OPEN] == 1
    assert kinds[Kind.PRODUCT_PIN] == 1 and kinds[Kind.PRICE_DROP] == 1
    assert kinds[Kind.LEAVE] == 4
    comments = [e for e in trace.events if e.kind == Kind.COMMENT]
    assert [c.value for c in comments] == [6, 12, 18]
    assert len({c.client for c in comments}) == 3
    plain = gzip.decompress(raw)
    assert b"secret-user" not in plain and "桃子".encode() not in plain
