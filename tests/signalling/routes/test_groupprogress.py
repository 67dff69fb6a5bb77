"""Public, read-only group-buy progress (for the clip share page): no token, no ids."""

from __future__ import annotations

import httpx
import redis.asyncio

from livecore.groupbuy import parse_spec
from livecore.store.bus import Bus
from livecore.store.groupbuys import GroupBuyStore
from tests.helpers import Node, create_room


async def test_progress_of_a_room(node: Node, aredis: redis.asyncio.Redis) -> None:
    create_room(node.url)
    store = GroupBuyStore(aredis, Bus(aredis))
    spec = parse_spec({"product": "阳山水蜜桃", "price_cents": 3990, "target": 5,
                       "duration_s": 3600}, now=1_800_000_000)  # fmt: skip
    gid = await store.open("r1", spec, 500, 200)
    for user in ("u1", "u2", "u3"):
        code, _ = await store.join("r1", gid, "yuanA", user, 1, "", 1_800_000_000)
        assert code == 1
    await store.join("r1", gid, "yuanB", "u4", 2, "", 1_800_000_000)
    async with httpx.AsyncClient(base_url=node.url) as http:
        answer = await http.get("/api/rooms/r1/groupbuys")
        assert answer.status_code == 200
        (buy,) = answer.json()["groupbuys"]
        assert buy["id"] == gid and buy["product"] == "阳山水蜜桃" and buy["target"] == 5
        assert buy["price_cents"] == 3990, "the clip page shows the group price"
        assert buy["status"] == "open" and "l1" not in buy
        assert buy["groups"] == [
            {"group": "yuanA", "members": 3, "qty": 3, "status": "open"},
            {"group": "yuanB", "members": 1, "qty": 2, "status": "open"},
        ]
        assert "u1" not in answer.text
        missing = await http.get("/api/rooms/nope/groupbuys")
        assert missing.status_code == 404 and missing.json()["code"] == "room_not_found"
        bad = await http.get("/api/rooms/a%20b/groupbuys")
        assert bad.status_code == 422
