"""Coupons end to end: a real node, real Valkey, a real aiortc publisher making the room live."""

from __future__ import annotations

from typing import Any

import pytest

from livecore.store import keys
from livecore.store.client import open_store
from tests.helpers import Node
from tests.media.sources import EncodedClip, encode_video_clip
from tests.signalling.hub.handlers.test_flash import PEACH, orders
from tests.signalling.hub.test_groupbuys import OPEN, XIXI, refused
from tests.signalling.routes.test_whip import publish, until_live
from tests.waiting import eventually


@pytest.fixture(scope="module")
def h264() -> EncodedClip:
    return encode_video_clip("video/H264", frames=90, gop=30)


async def test_coupons_are_claimed_only_while_live(
    connect: Any, hub_node: Node, h264: EncodedClip, redis_url: str
) -> None:
    """Created before the live; claimed only once it is live, within quota and limit, after
    the task; the shop gets the claim and the order that uses it."""
    host = await connect("host", "host1")
    a = await connect("viewer", "a")
    b = await connect("viewer", "b")
    assert (await refused(a, "coupon_create", title="x", off_cents=100, quota=1)).code == (
        "token_wrong_role"
    )
    err = await refused(host, "coupon_create", title="x", off_cents=500, min_cents=300, quota=1)
    assert err.code == "invalid_field" and err.message.startswith("off_cents")
    err = await refused(host, "coupon_create", title="x", off_cents=100, quota=1, task="watch")
    assert err.code == "invalid_field" and err.message.startswith("watch_min")
    plain = (await host.request("coupon_create", title="立减5元", off_cents=500, min_cents=1500,
                                quota=2, per_user=1))["cp"]  # fmt: skip
    talk = (await host.request("coupon_create", title="评论领券", off_cents=100, quota=5,
                               task="comment"))["cp"]  # fmt: skip
    group = (await host.request("coupon_create", title="拼团领券", off_cents=100, quota=5,
                                task="groupbuy"))["cp"]  # fmt: skip
    assert (await refused(a, "coupon_claim", cp=plain)).code == "room_not_live"
    pc, answer = await publish(hub_node, [h264])
    try:
        assert answer.status_code == 201, answer.text
        await until_live(hub_node)
        claimed = await a.request("coupon_claim", cp=plain, key="try1")
        assert (claimed["mine"], claimed["claimed"], claimed["left"]) == (1, 1, 1)
        assert (await a.request("coupon_claim", cp=plain, key="try1"))["claimed"] == 1
        assert (await refused(a, "coupon_claim", cp=plain)).code == "coupon_limit"
        assert (await b.request("coupon_claim", cp=plain))["left"] == 0
        c = await connect("viewer", "c")
        assert (await refused(c, "coupon_claim", cp=plain)).code == "coupon_gone"
        assert (await refused(c, "coupon_claim", cp="cnope")).code == "coupon_not_found"
        assert (await refused(c, "coupon_claim", cp=talk)).code == "coupon_task"
        await c.request("comment", text="好吃吗")
        assert (await c.request("coupon_claim", cp=talk))["mine"] == 1
        assert (await refused(c, "coupon_claim", cp=group)).code == "coupon_task"
        gb = (await host.request("groupbuy_open", target=3, **OPEN))["gb"]
        await c.request("locate", lat=XIXI[0], lng=XIXI[1])
        await c.request("groupbuy_join", gb=gb, qty=1)
        assert (await c.request("coupon_claim", cp=group))["mine"] == 1
        await host.request("card", **PEACH)
        fs = (await host.request("flash_start", price_cents=990, stock=5, limit=3,
                                 duration_s=60))["fs"]  # fmt: skip
        assert (await refused(c, "flash_buy", fs=fs, coupon=plain)).code == "coupon_not_held"
        assert (await refused(a, "flash_buy", fs=fs, coupon=plain)).code == "coupon_minimum"
        bought = await a.request("flash_buy", fs=fs, qty=2, coupon=plain)
        assert (bought["mine"], bought["coupon"]) == (2, plain)
        assert (await refused(a, "flash_buy", fs=fs, coupon=plain)).code == "coupon_not_held"
        late = await connect("viewer", "late")
        chips = {cp["cp"]: cp for cp in late.snapshot["coupons"]}
        assert chips[plain]["left"] == 0 and chips[talk]["claimed"] == 1
        assert late.snapshot["my_coupons"] == {}
        assert (await connect("viewer", "c")).snapshot["my_coupons"] == {talk: 1, group: 1}
        # a phone that reconnects (a network switch) keeps the comment it made
        d = await connect("viewer", "d")
        await d.request("comment", text="在吗")
        await d.close()
        store = await open_store(redis_url)
        try:
            facts = keys.room("r1", "coupon:tasks")
            await eventually(lambda: store.hexists(facts, "c:d"), within=5, what="d's facts kept")
        finally:
            await store.aclose()
        again = await connect("viewer", "d")
        assert (await again.request("coupon_claim", cp=talk))["mine"] == 1
    finally:
        await pc.close()
    claims = await orders(redis_url, "coupon")
    assert sorted((o["cp"], o["user"]) for o in claims) == sorted(
        [(plain, "a"), (plain, "b"), (talk, "c"), (group, "c"), (talk, "d")]
    )
    order = (await orders(redis_url, "flash"))[-1]
    assert (order["coupon"], order["coupon_off_cents"], order["total_cents"]) == (
        plain, "500", "1480")  # fmt: skip
