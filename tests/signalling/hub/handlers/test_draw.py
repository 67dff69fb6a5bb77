"""Lucky draws on the room channel of two real nodes: open, enter once, draw once, verify."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.python.room import ClientError, RoomClient
from tests.helpers import Node
from tests.signalling.hub.conftest import FAST


def get(url: str) -> httpx.Response:
    return httpx.get(url)


async def event_of(client: RoomClient, kind: str) -> dict[str, Any]:
    while True:
        event = await client.next_event()
        if event.get("t") == kind:
            return event


@pytest.mark.both_stores
async def test_a_draw_across_two_nodes_verifies_from_its_commitment(
    tmp_path: Path, redis_url: str, hub_node: Node, connect: Callable[..., Any]
) -> None:
    """Viewers on two nodes enter (twice each, a comment task): each counted once;
    one draw_drawn on both nodes; its seed re-derives the winners; roles and
    refusals hold and change nothing."""
    other = Node(tmp_path / "b", redis_url=redis_url, extra_args=FAST).start()
    try:
        host = await connect("host", "host1")
        viewers = [await connect("viewer", f"v{i}", other if i % 2 else None) for i in range(6)]
        with pytest.raises(ClientError) as err:
            await viewers[0].request("draw_open", prize="x", winners=1, duration_s=60)
        assert err.value.code == "token_wrong_role"
        with pytest.raises(ClientError) as err:
            await host.request("draw_open", prize="x", winners=1, duration_s=60, task="comment")
        assert err.value.code == "invalid_field"
        opened = await host.request(
            "draw_open",
            prize="土鸡蛋",
            winners=2,
            duration_s=120,
            task="comment",
            phrase="我要福袋",
        )
        with pytest.raises(ClientError) as err:
            await host.request("draw_open", prize="y", winners=1, duration_s=60)
        assert err.value.code == "draw_open"
        did = opened["draw"]
        seen = await event_of(viewers[1], "draw_opened")
        assert seen["draw"] == did and len(seen["commitment"]) == 64 and "seed" not in seen
        for viewer in viewers + viewers:
            ack = await viewer.request("draw_enter", draw=did)
            assert ack["entered"] is True
        comments = [e for e in [await event_of(viewers[0], "comment") for _ in range(6)]]
        assert {c["text"] for c in comments} == {"我要福袋"}
        assert sorted(c["user"] for c in comments) == [f"v{i}" for i in range(6)]
        with pytest.raises(ClientError) as err:
            await viewers[0].request("draw_enter", draw="dnope")
        assert err.value.code == "draw_not_found"
        drawn = await host.request("draw_roll", draw=did)
        assert drawn["status"] == "drawn" and drawn["entrants"] == 6 and not drawn["again"]
        again = await host.request("draw_roll", draw=did)
        assert again["again"] and again["won"] == drawn["won"]
        told = await event_of(viewers[1], "draw_drawn")  # on the other node
        assert told["won"] == drawn["won"] and told["commitment"] == seen["commitment"]
        with pytest.raises(ClientError) as err:
            await viewers[0].request("draw_enter", draw=did)
        assert err.value.code == "draw_closed"
        public = get(f"{other.url}/api/rooms/r1/draws/{did}").json()
        seed = bytes.fromhex(public["seed"])
        assert hashlib.sha256(seed).hexdigest() == seen["commitment"]
        entrants = public["entrants_list"]
        assert entrants == [f"v{i}" for i in range(6)]
        ranked = sorted(entrants, key=lambda u: (hashlib.sha256(seed + u.encode()).digest(), u))
        assert ranked[:2] == told["won"]
        listed = get(f"{hub_node.url}/api/rooms/r1/draws").json()["draws"]
        assert [d["draw"] for d in listed] == [did]
        assert get(f"{hub_node.url}/api/rooms/r1/draws/dnope").status_code == 404
    finally:
        other.stop()


async def test_a_groupbuy_task_needs_a_join(connect: Callable[..., Any]) -> None:
    """Without a join the entry is refused draw_task; after one it enters."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    did = (await host.request("draw_open", prize="p", winners=1, duration_s=60,
                              task="groupbuy"))["draw"]  # fmt: skip
    with pytest.raises(ClientError) as err:
        await viewer.request("draw_enter", draw=did)
    assert err.value.code == "draw_task"
    gb = (await host.request("groupbuy_open", product="桃", price_cents=100, target=5,
                             duration_s=600, scope="room"))["gb"]  # fmt: skip
    await viewer.request("groupbuy_join", gb=gb, qty=1)
    assert (await viewer.request("draw_enter", draw=did))["entrants"] == 1


def test_each_entry_code_has_its_documented_error() -> None:
    """The store's entry codes map to the error codes of docs/protocol.md (pure)."""
    from livecore.store import luckydraw as store
    from signalling.hub.handlers.draw import enter_refusal

    assert enter_refusal(1, 5) is None and enter_refusal(0, 5) is None
    codes = (store.UNKNOWN, store.CLOSED, store.NO_GROUPBUY, store.WATCHING, store.FULL)
    got = {code: enter_refusal(code, 40) for code in codes}
    assert {c: e.code.value for c, e in got.items() if e} == {
        store.UNKNOWN: "draw_not_found", store.CLOSED: "draw_closed",
        store.NO_GROUPBUY: "draw_task", store.WATCHING: "draw_task", store.FULL: "draw_full",
    }  # fmt: skip
    watching = got[store.WATCHING]
    assert watching is not None and "40 s" in watching.message


async def test_a_draw_is_drawn_on_time_with_no_console_open(
    connect: Callable[..., Any],
) -> None:
    """The host opens a 10 s draw and leaves: the nodes' deadline sweep draws it, and
    the entrant hears the winners (the host's page is not what draws)."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    opened = await host.request("draw_open", prize="土鸡蛋", winners=1, duration_s=10)
    await host.close()
    await viewer.request("draw_enter", draw=opened["draw"])
    while (drawn := await viewer.next_event(wait=30))["t"] != "draw_drawn":  # 10 s + a sweep
        pass
    assert drawn["draw"] == opened["draw"] and drawn["won"] == ["v1"]
