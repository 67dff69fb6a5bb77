"""A pinned batch in the live room: its devices' readings reach the room as
``sensor`` events with readable names, units and the excursion flag."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.python.room import ClientError, RoomClient
from livecore.clock import SystemClock
from livecore.store.client import connect
from signalling.routes.trace.service import TraceService
from tests.helpers import Node, create_room, token
from tests.signalling.routes.trace.trace_helpers import device_token, life, post_readings

BATCH = "tea-2026-001"


async def test_pinned_batch_readings_reach_the_room(node: Node, redis_url: str) -> None:
    """Pin (what the hub handler will call), then a cold-chain reading above 8 °C shows
    up in the room named 冷链温度 in °C and flagged; the card carries the page link."""
    create_room(node.url)
    life(node.url)
    client = connect(redis_url)
    svc = TraceService(client, SystemClock(), Ed25519PrivateKey.generate())
    tok = device_token(node.url, BATCH)
    async with (
        RoomClient(node.url, "r1", token("host", "host1")) as host,
        RoomClient(node.url, "r1", token("viewer", "v1")) as viewer,
    ):
        for who, batch, code in ((viewer, BATCH, "token_wrong_role"),
                                 (host, "no-such-batch", "batch_not_found")):  # fmt: skip
            with pytest.raises(ClientError) as refused:
                await who.request("batch_pin", batch=batch)
            assert refused.value.code == code
        await host.request("batch_pin", batch=BATCH)  # one tap on the host's console
        while (shown := await viewer.next_event(wait=10))["t"] != "card":
            pass
        card = shown["card"]
        assert card["kind"] == "trace" and card["url"] == f"/t/{BATCH}" and card["report_url"]
        assert card["verified"] is True  # the node checked its own signed chain
        hot = [{"kind": "cold_chain_c", "value": 9.4, "at": time.time()}]
        answer = post_readings(node.url, BATCH, tok, hot)
        assert answer.json() == {"accepted": 1, "excursions": 1}
        while True:
            event = await viewer.next_event(wait=10)
            if event["t"] == "sensor":
                break
    reading = event["readings"][0]
    assert event["batch"] == BATCH and reading["zh"] == "冷链温度" and reading["unit"] == "°C"
    assert reading["excursion"] is True and reading["band"] == [0, 8]
    assert await svc.batches.rooms(BATCH) == ["r1"]
    await client.aclose()
