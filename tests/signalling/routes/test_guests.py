"""Guest entry through a real node: a shared link's guest token, the device's id,
nicknames, the per-IP limit and the per-room switch."""

from __future__ import annotations

import httpx

from clients.python.room import RoomClient
from livecore import tokens
from tests.helpers import TEST_SECRET, Node, create_room, token

SECRET = TEST_SECRET.encode()


def guest(node: Node, room: str = "r1", **body: object) -> httpx.Response:
    return httpx.post(f"{node.url}/api/rooms/{room}/guest", json=body)


async def test_a_guest_token_joins_the_room_as_a_viewer(node: Node) -> None:
    create_room(node.url)
    answer = guest(node)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    claims = tokens.verify(SECRET, body["token"], now=body["expires_at"] - 60, room="r1")
    assert claims.role is tokens.Role.VIEWER and claims.user == body["user"]
    assert body["user"].startswith("g-") and len(body["user"]) == 14
    assert body["expires_at"] - claims.expires_at == 0
    async with RoomClient(node.url, "r1", body["token"]) as client:
        assert client.snapshot["you"]["user"] == body["user"]
        assert client.snapshot["you"]["role"] == "viewer"


def test_the_device_keeps_its_id_and_cannot_take_another(node: Node) -> None:
    create_room(node.url)
    first = guest(node).json()
    again = guest(node, guest=first["user"], key=first["key"]).json()
    assert again["user"] == first["user"], "the device's key keeps its guest id"
    forged = guest(node, guest=first["user"], key="A" * 22).json()
    assert forged["user"] != first["user"], "a wrong key gets a fresh id, never someone else's"
    other = guest(node).json()
    assert other["user"] != first["user"]


def test_nicknames_are_set_by_their_device_and_read_by_anyone(node: Node) -> None:
    create_room(node.url)
    first = guest(node).json()
    named = guest(node, guest=first["user"], key=first["key"], name="  王阿姨\u0007 ").json()
    assert named["name"] == "王阿姨" and named["user"] == first["user"]
    names = httpx.get(f"{node.url}/api/rooms/r1/names", params={"u": f"{first['user']},nobody"})
    assert names.json() == {"names": {first["user"]: "王阿姨"}}
    too_long = guest(node, name="x" * 21)
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid_field"
    many = httpx.get(f"{node.url}/api/rooms/r1/names", params={"u": ",".join(["a"] * 51)})
    assert many.status_code == 422


def test_bad_input_and_unknown_rooms(node: Node) -> None:
    create_room(node.url)
    assert guest(node, room="nope").json()["code"] == "room_not_found"
    assert guest(node, colour="red").json()["code"] == "invalid_field"
    raw = httpx.post(
        f"{node.url}/api/rooms/r1/guest",
        content=b"[]",
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 400 and raw.json()["code"] == "bad_request"
    text = httpx.post(f"{node.url}/api/rooms/r1/guest", content=b"{}")
    assert text.status_code == 415


def test_guest_mints_are_limited_per_address(node: Node) -> None:
    create_room(node.url)
    answers = []
    for _ in range(200):  # the bucket refills as it drains: check the refusal itself
        answers.append(guest(node))
        if answers[-1].status_code != 200:
            break
    *served, limited = answers
    assert len(served) >= 30 and limited.status_code == 429, [a.status_code for a in answers]
    assert limited.json()["code"] == "rate_limited" and limited.headers["retry-after"] == "1"


def test_the_host_turns_guest_entry_off(node: Node) -> None:
    create_room(node.url)
    url = f"{node.url}/api/rooms/r1/settings"
    assert httpx.get(url).json() == {"guests": True}
    viewer = {"Authorization": f"Bearer {token('viewer', 'v1')}"}
    assert httpx.put(url, json={"guests": False}, headers=viewer).status_code == 403
    host = {"Authorization": f"Bearer {token('host', 'host1')}"}
    assert httpx.put(url, json={"guests": "no"}, headers=host).json()["code"] == "invalid_field"
    assert httpx.put(url, json={"guests": False}, headers=host).json() == {"guests": False}
    refused = guest(node)
    assert refused.status_code == 401 and refused.json()["code"] == "token_missing"
    assert httpx.put(url, json={"guests": True}, headers=host).status_code == 200
    assert guest(node).status_code == 200
