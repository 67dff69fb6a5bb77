"""The dashboard, brand board and testimonial wall read endpoints, through a real node."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import redis.asyncio

from clients.python.room import RoomClient
from livecore.store import keys
from signalling.services.figures import comments_per_minute, unit_cents
from tests.helpers import Node, create_room, token

XIXI = "hz-xixi-chengyuan"


def auth(role: str, user: str, room: str = "r1") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user, room=room)}"}


async def test_room_figures_and_the_board(node: Node) -> None:
    create_room(node.url)
    async with (
        RoomClient(node.url, "r1", token("host", "host1")) as host,
        RoomClient(node.url, "r1", token("viewer", "v1", community=XIXI)) as v1,
        RoomClient(node.url, "r1", token("viewer", "v2", community=XIXI)) as v2,
    ):
        opened = await host.request(
            "groupbuy_open", product="Peach", price_cents=2000, target=2, duration_s=600,
            tiers=[[2, 300]],
        )  # fmt: skip
        await host.request("poll_open", question="Next?", options=["A", "B"])
        await v1.request("comment", text="hi")
        await host.request("card", kind="testimonial", author="Wang", text="Sweet!")
        await v1.request("groupbuy_join", gb=opened["gb"], qty=2)
        await v2.request("groupbuy_join", gb=opened["gb"], qty=1)
        async with httpx.AsyncClient() as http:
            figures = await http.get(
                f"{node.url}/api/rooms/r1/dashboard", headers=auth("host", "host1")
            )
            board_answer = await http.get(
                f"{node.url}/api/board", headers=auth("admin", "hq", room="*")
            )
            wall_answer = await http.get(f"{node.url}/api/rooms/r1/testimonials")
        assert figures.status_code == 200, figures.text
        d = figures.json()
        assert d["room"]["id"] == "r1" and d["comments"] == 1
        per_minute = d["comments_per_minute"]
        assert len(per_minute) == 30 and sum(n for _, n in per_minute) == 1
        # in this minute, or the last one when the minute turned in between
        assert 1 in (per_minute[-1][1], per_minute[-2][1])
        assert all(b[0] - a[0] == 60 for a, b in itertools.pairwise(per_minute))
        [group] = d["groups"]
        assert (group["group"], group["n"], group["q"], group["s"]) == (XIXI, 2, 3, "formed")
        assert group["unit_cents"] == 1700 and group["sales_cents"] == 5100
        assert d["orders"]["sales_cents"] == 5100 and d["orders"]["formed"] == 1
        assert d["orders"]["buyers"] == 2 and d["polls"][0]["options"] == ["A", "B"]

        board = board_answer.json()
        assert board["totals"]["sales_cents"] == 5100 and board["rooms"][0]["id"] == "r1"
        assert board["communities"][0]["community"] == XIXI
        assert board["communities"][0]["progress"] == 1.0

        wall = wall_answer.json()["testimonials"]
        assert [(w["author"], w["text"]) for w in wall] == [("Wang", "Sweet!")]


def test_roles_are_checked(node: Node) -> None:
    create_room(node.url)
    url = f"{node.url}/api/rooms/r1/dashboard"
    assert httpx.get(url).json()["code"] == "token_missing"
    assert httpx.get(url, headers=auth("viewer", "v1")).json()["code"] == "token_wrong_role"
    assert httpx.get(url, headers=auth("host", "h", room="r2")).json()["code"] == "token_wrong_room"
    assert httpx.get(url, headers=auth("admin", "hq", room="*")).status_code == 200
    assert httpx.get(f"{node.url}/api/board", headers=auth("host", "host1")).status_code == 403
    gone = httpx.get(f"{node.url}/api/rooms/nope/dashboard", headers=auth("admin", "hq", room="*"))
    assert gone.json()["code"] == "room_not_found"
    assert httpx.get(f"{node.url}/api/rooms/nope/testimonials").status_code == 404


def test_unit_price_and_minutes() -> None:
    spec = {"price": "2000", "tiers": "2:300,5:500", "bonus_cents": "100"}
    assert unit_cents(spec, 1, False) == 2000
    assert unit_cents(spec, 4, True) == 1600
    assert unit_cents(spec, 5, False) == 1500
    import msgpack

    now = 1_800_000_000.0
    events = [(1, msgpack.packb({"t": "comment", "ts": int(now * 1000)})), (2, b"\xc1"),
              (3, msgpack.packb({"t": "like"}))]  # fmt: skip
    minutes = comments_per_minute(events, now)
    assert len(minutes) == 30 and minutes[-1][1] == 1 and sum(c for _, c in minutes) == 1


async def test_the_board_names_officers_by_their_nickname(
    node: Node, aredis: redis.asyncio.Redis
) -> None:
    """An officer who set a nickname shows by it on the brand board (one display name
    everywhere, not a raw g-… id); one without keeps the id for the page's fallback."""
    create_room(node.url)
    named, plain = "g-abcdefghijkm", "g-nopqrstuvwxy"
    await aredis.zadd(keys.room("r1", "leaderboard"), {named: 700, plain: 300})
    await aredis.hset(keys.room("r1", "names"), named, "桃子妈妈")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{node.url}/api/board", headers=auth("admin", "hq", room="*"))
    board = answer.json()
    assert board["officers"] == [[named, 700], [plain, 300]]
    assert board["names"] == {named: "桃子妈妈"}


async def test_the_host_tells_guests_from_verified_members(node: Node) -> None:
    """A group with a shop-verified member and a guest (a device id from the guest
    endpoint): the host's figures count one of each, per group and in all."""
    create_room(node.url)
    async with httpx.AsyncClient() as http:
        minted = (await http.post(f"{node.url}/api/rooms/r1/guest", json={})).json()
    async with (
        RoomClient(node.url, "r1", token("host", "host1")) as host,
        RoomClient(node.url, "r1", token("viewer", "shop-member-7", community=XIXI)) as member,
        RoomClient(node.url, "r1", minted["token"]) as guest,
    ):
        opened = await host.request(
            "groupbuy_open", product="Peach", price_cents=2000, target=5, duration_s=600
        )
        located = await guest.request("locate", lat=30.26894, lng=120.12791)
        assert located["community"]["id"] == XIXI
        await member.request("groupbuy_join", gb=opened["gb"], qty=1)
        await guest.request("groupbuy_join", gb=opened["gb"], qty=2)
        async with httpx.AsyncClient() as http:
            figures = await http.get(
                f"{node.url}/api/rooms/r1/dashboard", headers=auth("host", "host1")
            )
    d = figures.json()
    [group] = d["groups"]
    assert (group["n"], group["guests"], group["verified"], group["counted"]) == (2, 1, 1, True)
    assert (d["orders"]["guests"], d["orders"]["verified"]) == (1, 1)


async def test_the_history_holds_the_live_so_far(node: Node) -> None:
    """While the room is live (a real aiortc publisher), its figures are sampled every
    5 s into the dashboard's ``history`` (oldest first); before it, there is none."""
    from aiortc import RTCSessionDescription

    from tests.media.sources import encode_video_clip, publisher_offer

    create_room(node.url)
    headers = auth("host", "host1")
    url = f"{node.url}/api/rooms/r1/dashboard"
    pc, offer = await publisher_offer([encode_video_clip("video/H264", frames=90, gop=30)])
    async with (
        httpx.AsyncClient() as http,
        RoomClient(node.url, "r1", token("viewer", "v1", community=XIXI)) as v1,
    ):
        await v1.request("like", n=5)
        assert (await http.get(url, headers=headers)).json()["history"] == []
        answer = await http.post(
            f"{node.url}/whip/r1", content=offer,
            headers={"Content-Type": "application/sdp", **headers},
        )  # fmt: skip
        assert answer.status_code == 201, answer.text
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.text, type="answer"))
        deadline = asyncio.get_running_loop().time() + 20
        while True:  # two samples with the likes and the viewer in them
            history = (await http.get(url, headers=headers)).json()["history"]
            if len([row for row in history if row[2] == 5 and row[1] >= 1]) >= 2:
                break
            assert asyncio.get_running_loop().time() < deadline, history
            await asyncio.sleep(0.5)
    await pc.close()
    ats = [row[0] for row in history]
    assert ats == sorted(ats) and ats[-1] - ats[0] >= 4, "one sample per 5 s step"
    assert all(len(row) == 6 for row in history)
