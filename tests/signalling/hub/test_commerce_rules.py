"""Commerce rules through the room channel of a real node: what a buyer can and cannot do."""

from __future__ import annotations

from typing import Any

import pytest

from clients.python.room import ClientError, RoomClient
from tests.helpers import Node, token
from tests.signalling.hub.test_groupbuys import CUIYUAN, XIXI

OPEN = {"product": "Honey peach 5 kg", "price_cents": 3990, "duration_s": 3600, "target": 5}


async def test_locate_again_cannot_join_a_second_compound(connect: Any, hub_node: Node) -> None:
    """A viewer who joined in one compound and moves by `locate` is refused in the next,
    and the snapshot after a reconnect still shows what they joined."""
    host = await connect("host", "host1")
    gb = (await host.request("groupbuy_open", **OPEN))["gb"]
    viewer = await connect("viewer", "mover")
    await viewer.request("locate", lat=XIXI[0], lng=XIXI[1])
    joined = await viewer.request("groupbuy_join", gb=gb, qty=2)
    assert joined["group"] == "hz-xixi-chengyuan" and joined["n"] == 1
    await viewer.request("locate", lat=CUIYUAN[0], lng=CUIYUAN[1])
    with pytest.raises(ClientError) as refused:
        await viewer.request("groupbuy_join", gb=gb, qty=2)
    assert refused.value.code == "other_group"
    again = RoomClient(hub_node.url, "r1", token("viewer", "mover"))
    await again.connect()
    try:
        assert again.snapshot["mine"] == {gb: 2}
    finally:
        await again.close()


async def test_a_token_naming_an_unknown_community_cannot_join(hub_node: Node) -> None:
    """No group is created for a community that is not in the registry."""
    host = RoomClient(hub_node.url, "r1", token("host", "host1"))
    await host.connect()
    ghost = RoomClient(hub_node.url, "r1", token("viewer", "g1", community="nowhere-estate"))
    await ghost.connect()
    try:
        gb = (await host.request("groupbuy_open", **OPEN))["gb"]
        with pytest.raises(ClientError) as refused:
            await ghost.request("groupbuy_join", gb=gb, qty=1)
        assert refused.value.code == "unknown_community"
        assert (await host.request("groupbuy_open", **OPEN))["gb"] != gb
    finally:
        await ghost.close()
        await host.close()
