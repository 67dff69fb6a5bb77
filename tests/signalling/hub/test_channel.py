"""The room channel end to end: a real node, real Valkey, the Python SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from clients.python.room import ClientError, RoomClient
from tests.helpers import Node, token
from tests.waiting import events_within


async def collect(client: RoomClient, kinds: set[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` events of the given types (others are skipped)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        event = await client.next_event(wait=10)
        if event["t"] in kinds:
            out.append(event)
    return out


async def test_snapshot_on_connect(connect: Any) -> None:
    """A new connection gets the room, who it is, an epoch and offset 0."""
    viewer = await connect("viewer", "alice")
    snap = viewer.snapshot
    assert snap["t"] == "snapshot" and snap["room"]["id"] == "r1"
    assert snap["you"] == {"user": "alice", "role": "viewer", "community": None}
    assert snap["epoch"] and snap["offset"] == 0
    assert snap["comments"] == [] and snap["polls"] == [] and snap["cards"] == {}


async def test_comments_reach_everyone_in_order(connect: Any) -> None:
    """Comments are acked with their offset and delivered to all, in offset order."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    acks = [await host.request("comment", text=f"c{i}") for i in range(5)]
    acks.append(await viewer.request("comment", text="from viewer"))
    offsets = [a["o"] for a in acks]
    assert offsets == list(range(1, 7))
    for client in (host, viewer):
        got = await collect(client, {"comment"}, 6)
        assert [e["o"] for e in got] == offsets
        assert got[-1]["user"] == "v1" and got[-1]["role"] == "viewer"


async def test_retried_comment_counts_once(connect: Any) -> None:
    """The same cid sent twice is one event; the retry is acked with the first offset."""
    viewer = await connect("viewer", "v1")
    first = await viewer.request("comment", text="hello", cid="k1")
    again = await viewer.request("comment", text="hello", cid="k1")
    assert first["o"] == again["o"]
    await viewer.request("comment", text="next", cid="k2")
    got = await collect(viewer, {"comment"}, 2)
    assert [e["text"] for e in got] == ["hello", "next"]


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("poll_open", {"question": "q", "options": ["a", "b"]}),
        ("poll_close", {"poll": "p1"}),
        ("mute", {"user": "x", "duration_s": 60}),
        ("delete_comment", {"offset": 1}),
        ("pin_question", {"offset": 1}),
        ("card", {"kind": "product", "name": "Peach", "price_cents": 1990}),
    ],
)
async def test_only_the_host_moderates(connect: Any, kind: str, fields: dict[str, Any]) -> None:
    """Viewers and KOCs get token_wrong_role for host actions; the connection stays."""
    for role in ("viewer", "koc"):
        client = await connect(role, f"u-{role}")
        with pytest.raises(ClientError) as info:
            await client.request(kind, **fields)
        assert info.value.code == "token_wrong_role"
        assert (await client.request("comment", text="still here"))["o"] > 0


async def test_host_cannot_vote(connect: Any) -> None:
    """Votes are for the audience."""
    host = await connect("host", "host1")
    poll = await host.request("poll_open", question="A or B?", options=["A", "B"])
    with pytest.raises(ClientError) as info:
        await host.request("vote", poll=poll["poll"], option=0)
    assert info.value.code == "token_wrong_role"


async def test_moderation(connect: Any) -> None:
    """Delete removes a comment for everyone; mute silences; pin/answer reach the snapshot."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    bad = await viewer.request("comment", text="buy my stuff elsewhere")
    question = await viewer.request("comment", text="Is it organic?")
    await host.request("delete_comment", offset=bad["o"])
    await host.request("pin_question", offset=question["o"])
    await host.request("answer_question", offset=question["o"])
    await host.request("mute", user="v1", duration_s=60)
    with pytest.raises(ClientError) as info:
        await viewer.request("comment", text="let me talk")
    assert info.value.code == "muted" and "seconds" in info.value.message
    wanted = {"comment", "comment_deleted", "question_pinned", "question_answered", "user_muted"}
    kinds = [e["t"] for e in await collect(viewer, wanted, 6)]
    assert kinds == ["comment", "comment", "comment_deleted", "question_pinned",
                     "question_answered", "user_muted"]  # fmt: skip
    fresh = await connect("viewer", "v2")
    texts = [c["text"] for c in fresh.snapshot["comments"]]
    assert texts == ["Is it organic?"]
    assert fresh.snapshot["question"]["answered"] is True
    with pytest.raises(ClientError) as info:
        await host.request("delete_comment", offset=999)
    assert info.value.code == "comment_not_found"


async def test_poll_is_exact_under_concurrency(connect: Any) -> None:
    """20 viewers vote at once (some change their mind): tallies and the final result are exact."""
    host = await connect("host", "host1")
    viewers = [await connect("viewer", f"v{i}") for i in range(20)]
    opened = await host.request("poll_open", question="Next group buy?", options=["A", "B", "C"])
    poll = opened["poll"]
    await asyncio.gather(
        *(v.request("vote", poll=poll, option=i % 3) for i, v in enumerate(viewers))
    )
    await asyncio.gather(*(v.request("vote", poll=poll, option=2) for v in viewers[:5]))
    await asyncio.gather(*(v.request("vote", poll=poll, option=2) for v in viewers[:5]))  # repeat
    expected = [0, 0, 0]
    for i in range(20):
        expected[2 if i < 5 else i % 3] += 1
    await until(
        host, lambda state: state.get("tallies", {}).get(poll, {}).get("counts") == expected
    )
    closed = await host.request("poll_close", poll=poll)
    final = [e for e in await collect(viewers[0], {"poll_opened", "poll_closed"}, 2)]
    assert final[1]["counts"] == expected and final[1]["total"] == 20
    assert closed["o"] == final[1]["o"]
    with pytest.raises(ClientError) as info:
        await viewers[0].request("vote", poll=poll, option=0)
    assert info.value.code == "poll_closed"
    with pytest.raises(ClientError) as info:
        await host.request("poll_close", poll=poll)
    assert info.value.code == "poll_closed"


async def test_timed_poll_closes_once(connect: Any) -> None:
    """A poll with duration_s closes by itself, with one poll_closed event."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    opened = await host.request("poll_open", question="Quick?", options=["y", "n"], duration_s=5)
    await viewer.request("vote", poll=opened["poll"], option=0)
    closed = await collect(viewer, {"poll_closed"}, 1)
    assert closed[0]["counts"] == [1, 0]
    # Once: no second poll_closed in the next second (the housekeeping sweep that
    # closes timed polls runs every second, so a duplicate would come within it).
    later = await events_within(viewer, 1.2)
    assert [e for e in later if e["t"] == "poll_closed"] == []


async def test_cards_and_sensors(connect: Any, hub_node: Node) -> None:
    """Pinned cards reach everyone and the snapshot; a device token posts readings."""
    host = await connect("host", "host1")
    await host.request("card", kind="product", name="Honey peach", price_cents=3990, stock=120)
    await host.request("card", kind="trace", batch="B-17", origin="Yangshan", readings=[[1, 4.5]])
    http = httpx.AsyncClient()
    made = await http.post(
        f"{hub_node.url}/api/rooms/r1/ingest-token",
        json={"device": "soil-1"},
        headers={"Authorization": f"Bearer {token('host', 'host1')}"},
    )
    assert made.status_code == 201, made.text
    device = {"Authorization": f"Bearer {made.json()['token']}"}
    posted = await http.post(
        f"{hub_node.url}/api/rooms/r1/sensors",
        json={"readings": [{"kind": "soil_temp_c", "value": 18.5}]},
        headers=device,
    )
    assert posted.status_code == 202, posted.text
    got = await collect(host, {"card", "sensor"}, 3)
    assert got[2]["device"] == "soil-1" and got[2]["readings"][0]["value"] == 18.5
    fresh = await connect("viewer", "v9")
    assert fresh.snapshot["cards"]["product"]["price_cents"] == 3990
    assert fresh.snapshot["cards"]["trace"]["batch"] == "B-17"
    refused = await http.post(
        f"{hub_node.url}/api/rooms/r1/sensors",
        json={"readings": [{"kind": "x", "value": 1}]},
        headers={"Authorization": f"Bearer {token('viewer', 'v1')}"},
    )
    assert refused.status_code == 403 and refused.json()["code"] == "token_wrong_role"
    bad = await http.post(
        f"{hub_node.url}/api/rooms/r1/sensors",
        json={"readings": [{"kind": "Bad Kind", "value": 1}]},
        headers=device,
    )
    assert bad.status_code == 422 and bad.json()["message"].startswith("readings[0].kind")
    await http.aclose()


async def test_likes_are_summed_and_coalesced(connect: Any) -> None:
    """Taps from several clients arrive as one growing total."""
    clients = [await connect("viewer", f"v{i}") for i in range(3)]
    for client in clients:
        for _ in range(4):
            await client.send("like", n=5)
    await until(clients[0], lambda state: state["likes"] == 60 and state["viewers"] == 3)


async def until(client: RoomClient, check: Any, seconds: float = 5.0) -> None:
    """Read events until ``check(client.state)`` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check(client.state):
        assert asyncio.get_running_loop().time() < deadline, client.state
        await client.next_event(wait=seconds)


async def test_likes_are_capped_per_user_per_second(connect: Any) -> None:
    """One user's 1,000 taps in a burst count as a person's (20 a second), without an
    error frame; the room's total is exactly what the acks said counted."""
    tapper = await connect("viewer", "tapper")
    started = asyncio.get_running_loop().time()
    acks = [await tapper.request("like", n=50) for _ in range(20)]
    elapsed = asyncio.get_running_loop().time() - started
    counted = sum(ack["n"] for ack in acks)
    assert 20 <= counted <= 20 + 20 * elapsed + 1, (counted, elapsed)
    await until(tapper, lambda state: state["likes"] == counted)
    other = await connect("viewer", "other")
    assert (await other.request("like", n=5))["n"] == 5
    await until(tapper, lambda state: state["likes"] == counted + 5)
