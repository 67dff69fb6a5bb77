"""What a client written from docs/protocol.md alone found on the room channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest
import websockets

from clients.python.room import ClientError
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST
from tests.signalling.hub.test_bad_input import PROTO, closed_with, joined, next_reply, ws_url
from tests.waiting import eventually


async def test_rate_limited_and_unknown_type_carry_the_id(hub_node: Node) -> None:
    """Errors for a rate-limited or unknown message name the request's id."""
    ws = await joined(hub_node)
    await ws.send(msgpack.packb({"t": "dance", "id": 5}))
    reply = await next_reply(ws)
    assert reply["code"] == "unknown_type" and reply["id"] == 5
    for i in range(100, 150):  # default 20/s, burst 40
        await ws.send(msgpack.packb({"t": "like", "id": i, "n": 1}))
    limited = []
    for _ in range(50):
        reply = await next_reply(ws)
        if reply["t"] == "error":
            limited.append(reply)
    assert limited and all(r["code"] == "rate_limited" and r.get("id") for r in limited)
    await ws.close()


async def test_delete_ack_offset_and_pinned_comment(connect: Any) -> None:
    """delete_comment acks with its event's offset, unpins the pinned question;
    pinning a deleted comment is refused."""
    host = await connect("host", "host1")
    made = await host.request("comment", text="an abusive question?")
    target = made["o"]
    await host.request("pin_question", offset=target)
    deleted = await host.request("delete_comment", offset=target)
    assert isinstance(deleted.get("o"), int) and deleted["o"] > target
    with pytest.raises(ClientError) as refused:
        await host.request("pin_question", offset=target)
    assert refused.value.code == "comment_not_found"
    late = await connect("viewer", "late")
    assert late.snapshot["question"] is None


async def test_mute_and_comment_fields(connect: Any) -> None:
    """mute checks the user alphabet; invisible-only comments are blank; the length
    error states the room's limit."""
    host = await connect("host", "host1")
    with pytest.raises(ClientError) as bad:
        await host.request("mute", user="no spaces/allowed", duration_s=60)
    assert bad.value.code == "invalid_field" and bad.value.message.startswith("user")
    for blank in ("\u200b\u200b\u200b", "\u200d\ufeff \u2060"):
        with pytest.raises(ClientError) as empty:
            await host.request("comment", text=blank)
        assert empty.value.code == "invalid_field"
    for long in ("x" * 201, "x" * 600):
        with pytest.raises(ClientError) as too_long:
            await host.request("comment", text=long)
        assert "200" in too_long.value.message and "500" not in too_long.value.message


async def test_device_tokens_do_not_join(hub_node: Node) -> None:
    """A device token's hello is refused (4001 token_wrong_role)."""
    ws = await websockets.connect(ws_url(hub_node), subprotocols=PROTO)
    await ws.send(msgpack.packb({"t": "hello", "token": token("device", "probe1")}))
    code, reason = await closed_with(ws)
    assert code == 4001 and "token_wrong_role" in reason


async def joined_raw(node: Node) -> dict[str, Any]:
    ws = await websockets.connect(ws_url(node), subprotocols=PROTO, max_size=2**24)
    await ws.send(msgpack.packb({"t": "hello", "token": token("viewer", "probe")}))
    snap = dict(msgpack.unpackb(await ws.recv()))
    await ws.close()
    return snap


@pytest.fixture
def fast_node(tmp_path: Path, redis_url: str) -> Any:
    node = Node(tmp_path / "fast", redis_url=redis_url, extra_args=FAST).start()
    create_room(node.url)
    yield node
    node.stop()


async def test_since_far_behind_gets_a_snapshot(fast_node: Node) -> None:
    """hello.since 0 on a room with more than 2,000 events: a fresh snapshot, no
    huge recovered frame."""
    hub_node = fast_node
    ws = await joined(hub_node, "host", "host1")
    for i in range(2100):
        await ws.send(msgpack.packb({"t": "comment", "text": f"c{i}"}))
    await ws.send(msgpack.packb({"t": "comment", "text": "last", "id": 1}))
    assert (await next_reply(ws))["t"] == "ack"

    async def full() -> dict[str, Any] | None:  # the history holds all 2,101 comments
        probe = await joined_raw(hub_node)
        return probe if probe["offset"] >= 2101 else None

    probe = await eventually(full, within=30, step=0.2, what="2,101 comments in the history")
    snap_epoch = probe["epoch"]
    late = await websockets.connect(ws_url(hub_node), subprotocols=PROTO, max_size=2**24)
    since = {"epoch": snap_epoch, "offset": 0}
    await late.send(msgpack.packb({"t": "hello", "token": token("viewer", "l"), "since": since}))
    first = msgpack.unpackb(await late.recv())
    assert first["t"] == "snapshot" and first.get("recovered") is False
    await late.close()
    await ws.close()


async def test_repeated_costream_request_makes_one_event(connect: Any) -> None:
    """Only a new co-stream request becomes a costream_requested event."""
    host = await connect("host", "host1")
    koc = await connect("koc", "koc1")
    first = await koc.request("costream_request")
    again = await koc.request("costream_request")
    assert first.get("pending") is False and again.get("pending") is True
    await host.request("comment", text="marker")
    kinds = []
    while "comment" not in kinds:
        kinds.append((await host.next_event(wait=5))["t"])
    assert kinds.count("costream_requested") == 1
