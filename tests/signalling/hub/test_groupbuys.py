"""Group buys, communities and share officers end to end: real nodes, real Valkey, the SDK."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import websockets
from websockets.typing import Subprotocol

from clients.python.room import ClientError, RoomClient
from livecore.communities import CommunityIndex, load_file
from livecore.store import index, keys
from livecore.store.bus import Bus
from livecore.store.client import connect
from livecore.store.groupbuys import GroupBuyStore
from signalling.app import SAMPLE_COMMUNITIES
from tests.helpers import Node, create_room, token
from tests.signalling.hub.conftest import FAST

XIXI = (30.26894, 120.12791)  # hz-xixi-chengyuan, radius 600 m
CUIYUAN = (30.27729, 120.14193)  # hz-cuiyuan-1, radius 250 m
PROTO = [Subprotocol("livecore.v1")]
OPEN = {"product": "Honey peach 5 kg", "price_cents": 3990, "duration_s": 3600}

Make = Callable[..., Any]


@pytest.fixture
async def client_for() -> AsyncIterator[Make]:
    """``await client_for(node, role, user, community=None)`` → a connected RoomClient."""
    made: list[RoomClient] = []

    async def make(node: Node, role: str, user: str, community: str | None = None) -> RoomClient:
        kw = {"community": community} if community else {}
        client = RoomClient(node.url, "r1", token(role, user, **kw), max_pending=100_000)
        await client.connect()
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def two_nodes(tmp_path: Path, redis_url: str) -> Any:
    """Two nodes on the same Valkey (room r1 created)."""
    a = Node(tmp_path / "a", redis_url=redis_url, extra_args=FAST).start()
    try:
        b = Node(tmp_path / "b", redis_url=redis_url, extra_args=FAST).start()
    except Exception:
        a.stop()
        raise
    create_room(a.url)
    yield a, b
    a.stop()
    b.stop()


async def drain(client: RoomClient, seconds: float) -> list[dict[str, Any]]:
    """Everything the client queues (events, state updates, errors) for ``seconds``."""
    out: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            out.append(await client.next_event(wait=left))
        except TimeoutError:
            break
    return out


def group_updates(items: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(gb, group, state) of every ``groups`` state update among ``items``."""
    return [
        (gb, group, st)
        for item in items
        if item["t"] == "state"
        for gb, groups in item.get("groups", {}).items()
        for group, st in groups.items()
    ]


def latest(updates: list[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The newest state of each group (by version), keyed by group."""
    out: dict[str, dict[str, Any]] = {}
    for _, group, st in updates:
        if group not in out or st["v"] > out[group]["v"]:
            out[group] = st
    return out


async def until_groups(
    client: RoomClient, gb: str, want: dict[str, int], seconds: float = 8.0
) -> list[dict[str, Any]]:
    """Read until the newest state of each group in ``want`` has that many members;
    returns everything read."""
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        now = latest([u for u in group_updates(seen) if u[0] == gb])
        if all(now.get(group, {}).get("n") == n for group, n in want.items()):
            return seen
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"never reached {want}; newest states {now}"
        seen.append(await client.next_event(wait=left))


async def raw_join(node: Node, user: str, ref: str | None) -> tuple[Any, list[dict[str, Any]]]:
    """A raw websocket whose hello carries ``ref`` (the SDK does not send it); returns the
    socket, the snapshot and the referral refusal that may follow it."""
    ws = await websockets.connect(f"ws://127.0.0.1:{node.port}/ws/r1", subprotocols=PROTO)
    hello: dict[str, Any] = {"t": "hello", "token": token("viewer", user)}
    if ref is not None:
        hello["ref"] = ref
    await ws.send(msgpack.packb(hello))
    got: list[dict[str, Any]] = []
    while not got or got[-1]["t"] != "snapshot":
        got.append(msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5), raw=False))
    try:
        following = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 0.5), raw=False)
    except TimeoutError:
        return ws, got
    if following["t"] == "error":
        got.append(following)
    return ws, got


async def raw_request(ws: Any, kind: str, request_id: int, **fields: Any) -> dict[str, Any]:
    """Send one request on a raw socket and return its ack or error (batches skipped)."""
    await ws.send(msgpack.packb({"t": kind, "id": request_id, **fields}))
    while True:
        message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5), raw=False)
        if message["t"] in ("ack", "error") and message.get("id") == request_id:
            return dict(message)


async def refused(client: RoomClient, kind: str, **fields: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        await client.request(kind, **fields)
    return info.value


async def stored_events(redis_url: str, kind: str) -> list[dict[str, Any]]:
    """Durable events of room r1 of one type, read straight from Valkey."""
    client = connect(redis_url)
    try:
        raw = await Bus(client).recent("r1", 1000)
    finally:
        await client.aclose()
    events = [msgpack.unpackb(p, raw=False) for _, p in raw]
    return [e for e in events if e["t"] == kind]


# -- communities ---------------------------------------------------------------------------


async def test_locate_choose_and_fixed_community(connect: Any, hub_node: Node) -> None:
    """locate sets a community or offers nearby ones; cty in the token fixes it."""
    viewer = await connect("viewer", "v1")
    assert viewer.snapshot["you"]["community"] is None and viewer.snapshot["community"] is None
    found = await viewer.request("locate", lat=XIXI[0], lng=XIXI[1])
    assert found["community"]["id"] == "hz-xixi-chengyuan" and found["nearby"] == []
    index = CommunityIndex(load_file(SAMPLE_COMMUNITIES))
    between = (30.2738, 120.1335)
    local_found, local_near = index.resolve(*between)
    assert local_found is None and len(local_near) >= 2
    offered = await viewer.request("locate", lat=between[0], lng=between[1])
    assert offered["community"] is None
    assert [c["id"] for c in offered["nearby"]] == [c.id for c in local_near]
    chosen = local_near[1].id
    assert (await viewer.request("choose_community", community=chosen))["community"]["id"] == (
        chosen
    )
    assert (await refused(viewer, "choose_community", community="hz-liangzhu-wenhua")).code == (
        "unknown_community"
    )
    far = await viewer.request("locate", lat=39.9042, lng=116.4074)
    assert far == {**far, "community": None, "nearby": []}
    for fields, name in (({"lat": 91.0, "lng": 120.0}, "lat"), ({"lat": 30.0, "lng": -181},
                         "lng"), ({"lat": float("nan"), "lng": 120.0}, "lat"),
                         ({"lat": 30.0, "lng": float("inf")}, "lng")):  # fmt: skip
        err = await refused(viewer, "locate", **fields)
        assert err.code == "invalid_field" and err.message.startswith(name), err
    fixed = RoomClient(hub_node.url, "r1", token("viewer", "v2", community="hz-cuiyuan-1"))
    await fixed.connect()
    try:
        assert fixed.snapshot["you"]["community"] == "hz-cuiyuan-1"
        assert fixed.snapshot["community"]["id"] == "hz-cuiyuan-1"
        assert (await refused(fixed, "locate", lat=XIXI[0], lng=XIXI[1])).code == (
            "community_fixed"
        )
    finally:
        await fixed.close()


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"lat": True, "lng": 120.0}, "lat"),
        ({"lat": 30.0, "lng": "120"}, "lng"),
        ({"lng": 120.0}, "lat"),
        ({"lat": 30.0, "lng": 120.0, "alt": 5}, "alt"),
    ],
)
async def test_locate_bad_types(hub_node: Node, fields: dict[str, Any], name: str) -> None:
    """Non-numbers, missing, unknown fields → invalid_field naming it; socket stays."""
    ws, _ = await raw_join(hub_node, "v1", None)
    await ws.send(msgpack.packb({"t": "locate", "id": 5, **fields}))
    reply = await next_reply(ws)
    assert reply["t"] == "error" and reply["code"] == "invalid_field"
    assert reply["message"].startswith(f"{name}:"), reply
    answer = await raw_request(ws, "locate", 6, lat=XIXI[0], lng=XIXI[1])
    assert answer["community"]["id"] == "hz-xixi-chengyuan"
    await ws.close()


async def test_invalid_field_error_names_the_request_id(hub_node: Node) -> None:
    """groupbuy_join with qty 0 (refused by the wire checks) is answered with its id."""
    ws, _ = await raw_join(hub_node, "v1", None)
    await ws.send(msgpack.packb({"t": "groupbuy_join", "id": 42, "gb": "g1", "qty": 0}))
    reply = await next_reply(ws)
    await ws.close()
    assert reply["code"] == "invalid_field" and reply["id"] == 42


async def next_reply(ws: Any) -> dict[str, Any]:
    """The next ack or error on a raw socket (batches skipped)."""
    while True:
        message = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5), raw=False)
        if message["t"] in ("ack", "error"):
            return dict(message)


async def test_refusals(connect: Any) -> None:
    """Roles, missing community, bad specs and unknown ids get their error codes."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "v1")
    assert (await refused(viewer, "groupbuy_open", target=3, **OPEN)).code == "token_wrong_role"
    assert (await refused(viewer, "commission_set", level1_bp=1, level2_bp=1)).code == (
        "token_wrong_role"
    )
    assert (await refused(host, "groupbuy_join", gb="g1", qty=1)).code == "token_wrong_role"
    err = await refused(host, "groupbuy_open", target=1, **OPEN)
    assert err.code == "invalid_field" and err.message.startswith("target")
    err = await refused(host, "groupbuy_open", target=3, tiers=[[5, 100], [3, 200]], **OPEN)
    assert err.code == "invalid_field" and err.message.startswith("tiers")
    err = await refused(host, "commission_set", level1_bp=6000, level2_bp=5000)
    assert err.code == "invalid_field" and err.message.startswith("level2_bp")
    opened = await host.request("groupbuy_open", target=3, **OPEN)
    assert opened["gb"].startswith("g") and opened["deadline"] >= time.time() + 3500
    gb = opened["gb"]
    assert (await refused(viewer, "groupbuy_join", gb=gb, qty=1)).code == "no_community"
    assert (await refused(viewer, "groupbuy_leave", gb=gb)).code == "no_community"
    assert (await refused(viewer, "groupbuy_join", gb="gnope", qty=1)).code == (
        "groupbuy_not_found"
    )
    assert (await refused(viewer, "officer_apply")).code == "not_a_buyer"
    assert (await refused(viewer, "officer_me")).code == "not_a_buyer"
    await viewer.request("locate", lat=XIXI[0], lng=XIXI[1])
    assert (await refused(viewer, "groupbuy_join", gb=gb, qty=6)).code == "quantity_limit"
    assert (await refused(viewer, "groupbuy_join", gb=gb, qty=1, inviter="v1")).code == (
        "self_referral"
    )
    assert (await refused(viewer, "groupbuy_join", gb=gb, qty=1, inviter="ghost")).code == (
        "unknown_referrer"
    )
    joined = await viewer.request("groupbuy_join", gb=gb, qty=2)
    assert joined == {**joined, "gb": gb, "group": "hz-xixi-chengyuan", "n": 1, "q": 2,
                      "s": "open", "missing": 2, "unit_cents": 3990, "target": 3}  # fmt: skip
    assert (await viewer.request("comment", text="still here"))["o"] > 0


# -- group states by community ---------------------------------------------------------------


async def test_groups_reach_only_their_community(connect: Any, client_for: Make,
                                                 hub_node: Node) -> None:  # fmt: skip
    """Each viewer sees only its community's group, the host all; formed once."""
    host = await connect("host", "host1")
    a = await connect("viewer", "a")
    b = await connect("viewer", "b")
    await a.request("locate", lat=XIXI[0], lng=XIXI[1])
    await b.request("locate", lat=CUIYUAN[0], lng=CUIYUAN[1])
    c = await client_for(hub_node, "viewer", "c", "hz-xixi-chengyuan")
    opened = await host.request("groupbuy_open", target=3, tiers=[[3, 500]], **OPEN)
    gb = opened["gb"]
    ack_a = await a.request("groupbuy_join", gb=gb, qty=2)
    ack_b = await b.request("groupbuy_join", gb=gb, qty=1)
    ack_c = await c.request("groupbuy_join", gb=gb, qty=1)
    assert (ack_a["group"], ack_a["n"], ack_a["missing"]) == ("hz-xixi-chengyuan", 1, 2)
    assert (ack_b["group"], ack_b["n"], ack_b["missing"]) == ("hz-cuiyuan-1", 1, 2)
    assert (ack_c["group"], ack_c["n"], ack_c["q"]) == ("hz-xixi-chengyuan", 2, 3)
    everyone = {"host": host, "a": a, "b": b, "c": c}
    drained = await asyncio.gather(*(drain(cl, 1.0) for cl in everyone.values()))
    seen = dict(zip(everyone, drained, strict=True))
    for name, own in (("a", "hz-xixi-chengyuan"), ("c", "hz-xixi-chengyuan"),
                      ("b", "hz-cuiyuan-1")):  # fmt: skip
        groups = {group for _, group, _ in group_updates(seen[name])}
        assert groups == {own}, (name, groups)
    host_view = latest(group_updates(seen["host"]))
    assert set(host_view) == {"hz-xixi-chengyuan", "hz-cuiyuan-1"}
    assert host_view["hz-xixi-chengyuan"]["n"] == 2 and host_view["hz-cuiyuan-1"]["n"] == 1
    fresh_b = await client_for(hub_node, "viewer", "b2", "hz-cuiyuan-1")
    assert set(fresh_b.snapshot["groups"][gb]) == {"hz-cuiyuan-1"}
    assert fresh_b.snapshot["groupbuys"][0]["gb"] == gb
    fresh_host = await connect("host", "host2")
    assert set(fresh_host.snapshot["groups"][gb]) == {"hz-xixi-chengyuan", "hz-cuiyuan-1"}
    d = await client_for(hub_node, "viewer", "d", "hz-xixi-chengyuan")
    formed = await d.request("groupbuy_join", gb=gb, qty=1)
    assert (formed["s"], formed["n"], formed["missing"], formed["unit_cents"]) == (
        "formed", 3, 0, 3490)  # fmt: skip
    everyone["d"] = d
    drained = await asyncio.gather(*(drain(cl, 1.5) for cl in everyone.values()))
    own = {"a": "hz-xixi-chengyuan", "c": "hz-xixi-chengyuan", "d": "hz-xixi-chengyuan",
           "b": "hz-cuiyuan-1"}  # fmt: skip
    for name, items in zip(everyone, drained, strict=True):
        events = [e for e in items if e["t"] == "groupbuy_formed"]
        assert len(events) == 1, (name, events)
        assert events[0] == {**events[0], "gb": gb, "group": "hz-xixi-chengyuan", "members": 3,
                             "qty": 4, "unit_cents": 3490}  # fmt: skip
        groups = {group for _, group, _ in group_updates(items)}
        if name in own:
            assert groups <= {own[name]}, (name, groups)
        if own.get(name) == "hz-xixi-chengyuan":
            assert latest(group_updates(items))["hz-xixi-chengyuan"]["s"] == "formed"
    for client in (a, c):
        assert set(client.state.get("groups", {}).get(gb, {})) <= {"hz-xixi-chengyuan"}
    assert (await refused(a, "groupbuy_leave", gb=gb)).code == "group_formed"
    assert (await refused(a, "groupbuy_join", gb=gb, qty=3)).code == "group_formed"


async def test_viewer_without_community_sees_no_groups(connect: Any) -> None:
    """A viewer who has not located yet gets no community groups in the snapshot."""
    host = await connect("host", "host1")
    await host.request("groupbuy_open", target=3, **OPEN)
    viewer = await connect("viewer", "nowhere")
    assert viewer.snapshot["groupbuys"] and viewer.snapshot["groups"] == {}


# -- many nodes -------------------------------------------------------------------------------


@pytest.mark.both_stores
async def test_two_nodes_concurrent_joins_are_exact(
    two_nodes: tuple[Node, Node], client_for: Make, redis_url: str
) -> None:
    """30 viewers on two nodes join at once, twice each: exact counts, one formed."""
    a, b = two_nodes
    host = await client_for(a, "host", "host1")
    plan = [(f"x{i}", "hz-xixi-chengyuan", (a, b)[i % 2], 1 + i % 3) for i in range(24)]
    plan += [(f"y{i}", "hz-cuiyuan-1", (a, b)[i % 2], 2) for i in range(6)]
    viewers = await asyncio.gather(*(client_for(n, "viewer", u, c) for u, c, n, _ in plan))
    gb = (await host.request("groupbuy_open", target=20, **OPEN))["gb"]
    acks = await asyncio.gather(
        *(v.request("groupbuy_join", gb=gb, qty=q) for v, (_, _, _, q) in zip(viewers, plan,
          strict=True) for _ in range(2))
    )  # fmt: skip
    assert all(ack["t"] == "ack" for ack in acks)
    client = connect(redis_url)
    try:
        store = GroupBuyStore(client, Bus(client))
        xixi = await store.group("r1", gb, "hz-xixi-chengyuan")
        cuiyuan = await store.group("r1", gb, "hz-cuiyuan-1")
    finally:
        await client.aclose()
    qx = sum(q for _, c, _, q in plan if c == "hz-xixi-chengyuan")
    assert (xixi.members, xixi.qty, xixi.status, xixi.version) == (24, qx, "formed", 24)
    assert (cuiyuan.members, cuiyuan.qty, cuiyuan.status) == (6, 12, "open")
    assert [e["group"] for e in await stored_events(redis_url, "groupbuy_formed")] == [
        "hz-xixi-chengyuan"]  # fmt: skip
    counts = {"hz-xixi-chengyuan": 24, "hz-cuiyuan-1": 6}
    for i in (0, 1, 24, 25):  # both nodes, both groups
        (user, community, _, _), viewer = plan[i], viewers[i]
        items = await until_groups(viewer, gb, {community: counts[community]})
        items += await drain(viewer, 0.3)
        assert {g for _, g, _ in group_updates(items)} == {community}, user
        formed = [e for e in items if e["t"] == "groupbuy_formed"]
        assert len(formed) == 1 and formed[0]["members"] == 20, (user, formed)
    await until_groups(host, gb, counts)


@pytest.mark.both_stores
async def test_deadline_expires_once_with_two_nodes(
    two_nodes: tuple[Node, Node], client_for: Make, redis_url: str
) -> None:
    """Two nodes sweep: each open group fails once, closed once, formed kept."""
    a, b = two_nodes
    host = await client_for(a, "host", "host1")
    gb = (await host.request("groupbuy_open", target=2, duration_s=60, **{
        k: v for k, v in OPEN.items() if k != "duration_s"}))["gb"]  # fmt: skip
    members = [("f1", "hz-xixi-chengyuan", a), ("f2", "hz-xixi-chengyuan", b),
               ("o1", "hz-cuiyuan-1", b), ("o2", "hz-cuiyuan-2", a)]  # fmt: skip
    viewers = [await client_for(n, "viewer", u, c) for u, c, n in members]
    for viewer in viewers:
        await viewer.request("groupbuy_join", gb=gb, qty=1)
    client = connect(redis_url)
    due = index.ScoredIndex(client, index.DUE)
    try:
        # duration_s is at least 60 s: move the deadline to the past in Valkey itself (the
        # meta hash the Lua checks and the sweep's schedule), then let both nodes sweep.
        past = int(time.time()) - 1
        await client.hset(keys.room("r1", f"gb:{gb}"), "deadline", past)
        await due.add(f"r1|{gb}", past)
        items = [await until_closed(viewer, gb) for viewer in viewers]
        for i, more in enumerate(await asyncio.gather(*(drain(v, 2.5) for v in viewers))):
            items[i] += more
        status = await client.hget(keys.room("r1", f"gb:{gb}"), "status")
        assert status == b"closed" and await due.upto(past, 10) == []
    finally:
        await client.aclose()
    for (user, _, _), got in zip(members, items, strict=True):
        ends = {"groupbuy_failed", "groupbuy_closed"}
        kinds = Counter((e["t"], e.get("group")) for e in got if e["t"] in ends)
        assert kinds == {("groupbuy_failed", "hz-cuiyuan-1"): 1,
                         ("groupbuy_failed", "hz-cuiyuan-2"): 1,
                         ("groupbuy_closed", None): 1}, user  # fmt: skip
    assert len(await stored_events(redis_url, "groupbuy_failed")) == 2
    assert len(await stored_events(redis_url, "groupbuy_closed")) == 1
    assert (await refused(viewers[2], "groupbuy_join", gb=gb, qty=2)).code == "groupbuy_closed"
    late = await client_for(b, "viewer", "late", "hz-xixi-chengyuan")
    assert late.snapshot["groupbuys"] == [] and late.snapshot["groups"] == {}


async def until_closed(client: RoomClient, gb: str, seconds: float = 20.0) -> list[dict[str, Any]]:
    """Read until ``groupbuy_closed`` of ``gb``; returns what was read."""
    seen: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while not (seen and seen[-1]["t"] == "groupbuy_closed" and seen[-1]["gb"] == gb):
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"groupbuy_closed never came; saw {[e['t'] for e in seen]}"
        try:
            seen.append(await client.next_event(wait=left))
        except TimeoutError:
            raise AssertionError(
                f"groupbuy_closed never came to {client.url}; saw {seen}, offset {client.offset}"
            ) from None
    return seen


# -- share officers ----------------------------------------------------------------------------


async def test_officer_flow(connect: Any, hub_node: Node) -> None:
    """Buyer → officer; a ?ref= friend buys; officer earns and leads the board."""
    host = await connect("host", "host1")
    await host.request("commission_set", level1_bp=1500, level2_bp=300)
    gb = (await host.request("groupbuy_open", target=3, scope="room", **OPEN))["gb"]
    buyer = await connect("viewer", "buyer")
    joined = await buyer.request("groupbuy_join", gb=gb, qty=1)
    assert joined["group"] == "room" and joined["scope"] == "room"
    applied = await buyer.request("officer_apply")
    code = applied["code"]
    assert applied["new"] is True and len(code) == 6
    assert applied["links"]["room"].endswith(f"/r/r1?ref={code}")
    assert applied["links"]["clips"].endswith(f"/clips/r1?ref={code}")
    again = await buyer.request("officer_apply")
    assert (again["code"], again["new"]) == (code, False)
    friend, got = await raw_join(hub_node, "friend", code)
    assert [m["t"] for m in got] == ["snapshot"] and got[0]["referred_by"] == "buyer"
    ack = await raw_request(friend, "groupbuy_join", 1, gb=gb, qty=2)
    assert ack["t"] == "ack" and ack["n"] == 2
    stranger, got = await raw_join(hub_node, "stranger", "NOPE99")
    assert [m["t"] for m in got] == ["snapshot", "error"]
    assert got[1]["code"] == "unknown_referrer" and got[0]["referred_by"] is None
    assert (await raw_request(stranger, "comment", 1, text="still here"))["t"] == "ack"
    selfish, got = await raw_join(hub_node, "buyer", code)
    assert got[-1]["t"] == "error" and got[-1]["code"] == "self_referral"
    assert got[0]["officer"]["code"] == code
    me = await buyer.request("officer_me")
    assert (me["earned_cents"], me["referrals"], me["rank"]) == (0, 1, None)
    third = await connect("viewer", "third")
    formed = await third.request("groupbuy_join", gb=gb, qty=1)
    assert formed["s"] == "formed"
    expected = 3990 * 2 * 1500 // 10_000
    deadline = asyncio.get_running_loop().time() + 5
    while host.state.get("leaderboard") != [["buyer", expected]]:
        assert asyncio.get_running_loop().time() < deadline, host.state
        await host.next_event(wait=5)
    me = await buyer.request("officer_me")
    assert (me["user"], me["earned_cents"], me["referrals"], me["rank"], me["recruiter"]) == (
        "buyer", expected, 1, 1, None)  # fmt: skip
    later = await connect("viewer", "later")
    assert later.snapshot["leaderboard"] == [["buyer", expected]]
    for ws in (friend, stranger, selfish):
        await ws.close()


async def test_leave_leaves_the_group_joined_not_the_located_one(connect: Any) -> None:
    """After ``locate`` into another compound, ``groupbuy_leave`` leaves the group the
    buyer joined (it used to ack against the new compound's group and leave them in)."""
    host = await connect("host", "host1")
    viewer = await connect("viewer", "mover")
    gb = (await host.request("groupbuy_open", target=3, **OPEN))["gb"]
    await viewer.request("locate", lat=XIXI[0], lng=XIXI[1])
    joined = await viewer.request("groupbuy_join", gb=gb, qty=1)
    assert (joined["group"], joined["n"]) == ("hz-xixi-chengyuan", 1)
    await viewer.request("locate", lat=CUIYUAN[0], lng=CUIYUAN[1])
    left = await viewer.request("groupbuy_leave", gb=gb)
    assert (left["group"], left["n"]) == ("hz-xixi-chengyuan", 0)
    again = await viewer.request("groupbuy_join", gb=gb, qty=1)
    assert (again["group"], again["n"]) == ("hz-cuiyuan-1", 1)


async def test_one_connections_messages_are_handled_in_order(connect: Any, hub_node: Node) -> None:
    """``locate`` then ``groupbuy_join`` sent back to back: the join sees the located
    community (they used to run concurrently and the join found no community)."""
    host = await connect("host", "host1")
    gb = (await host.request("groupbuy_open", target=3, **OPEN))["gb"]
    for attempt in range(5):
        ws, _ = await raw_join(hub_node, f"quick{attempt}", None)
        try:
            await ws.send(msgpack.packb({"t": "locate", "id": 1, "lat": XIXI[0], "lng": XIXI[1]}))
            await ws.send(msgpack.packb({"t": "groupbuy_join", "id": 2, "gb": gb, "qty": 1}))
            replies = [await next_reply(ws), await next_reply(ws)]
        finally:
            await ws.close()
        assert [r["id"] for r in replies] == [1, 2], replies
        assert replies[1]["t"] == "ack" and replies[1]["group"] == "hz-xixi-chengyuan", replies
