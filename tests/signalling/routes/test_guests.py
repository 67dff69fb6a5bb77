"""Guest entry through a real node: a shared link's guest token, the device's id,
nicknames, the per-device limit and the per-room switch."""

from __future__ import annotations

import math
import time
from pathlib import Path

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


def test_guest_mints_key_on_the_device(tmp_path: Path, redis_url: str) -> None:
    """25 new devices behind one address all get tokens; one device past its burst of 10
    gets 429 with Retry-After; the address limit (set low here) stops a flood of new
    devices, with its own Retry-After."""
    node = Node(tmp_path / "n", redis_url=redis_url,
                extra_args=["--address-rate", "0.1", "--address-burst", "40"]).start()  # fmt: skip
    try:
        create_room(node.url)
        first = time.monotonic()  # the address's bucket (0.1/s, burst 40) from here
        devices = [guest(node) for _ in range(25)]
        assert [a.status_code for a in devices] == [200] * 25
        mine = devices[0].json()
        # The device's bucket (1/s, burst 10) refills while the requests are made: on a
        # loaded machine a request may take a while, so count what the clock allowed.
        started = time.monotonic()
        renewed = []
        for _ in range(40):
            answer = guest(node, guest=mine["user"], key=mine["key"])
            if answer.status_code != 200:
                break
            renewed.append(answer)
        refilled = int(time.monotonic() - started) + 1
        assert 10 <= len(renewed) <= 10 + refilled, (len(renewed), refilled)
        assert all(a.json()["user"] == mine["user"] for a in renewed)
        limited = answer
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert limited.headers["retry-after"] == "1"
        flood = []
        left = 40 - 25 - len(renewed)  # the address's burst of 40, less what was spent
        for _ in range(20):
            flood.append(guest(node))
            if flood[-1].status_code != 200:
                break
        spent_s = time.monotonic() - first
        refilled = int(spent_s * 0.1) + 1
        assert max(0, left - 1) <= len(flood) - 1 <= left + refilled
        assert flood[-1].status_code == 429
        # A whole token takes 10 s; what refilled while the requests were made (a loaded
        # machine makes them slowly) is already part of the next one.
        assert 10 - math.ceil(spent_s) <= int(flood[-1].headers["retry-after"]) <= 10
    finally:
        node.stop()


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


def test_new_guest_ids_are_limited_per_address(node: Node) -> None:
    """A phone that forgets its id (cleared storage) mints a new one each time: one
    address gets at most a burst of 60 new ids (then 429 guest_new), while a device
    that kept its id still renews; a refused mint changes nothing."""
    create_room(node.url)
    first = time.monotonic()  # the address's bucket of new ids (0.2/s, burst 60) from here
    known = guest(node).json()
    fresh = []
    for _ in range(80):
        fresh.append(guest(node))
        if fresh[-1].status_code != 200:
            break
    refused = fresh.pop()
    # 60, and what refilled while they were made (a loaded machine makes them slowly)
    assert 59 <= len(fresh) <= 59 + int((time.monotonic() - first) * 0.2) + 1
    assert len({a.json()["user"] for a in fresh} | {known["user"]}) == len(fresh) + 1
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    again = guest(node, guest=known["user"], key=known["key"])
    assert again.status_code == 200 and again.json()["user"] == known["user"]
    metrics = httpx.get(f"{node.url}/metrics").text
    assert 'livecore_refusals_total{limit="guest_new_address"} 1.0' in metrics
