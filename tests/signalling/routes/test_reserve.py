"""Reservations on a real node: a guest reserves without an account, once; the host
sees the count; the calendar entry is RFC 5545."""

from __future__ import annotations

import httpx

from tests.helpers import Node, token


def test_a_guest_reserves_once_and_the_host_sees_the_count(node: Node) -> None:
    """Guest token → reserve (twice: counted once); host reads the count; cancel;
    a room that does not exist is refused; the .ics names the start."""
    start = "2031-05-01T12:00:00Z"
    body = {"id": "r1", "title": "周六早市, 桃子", "store": "鲜果铺", "starts_at": start}
    made = httpx.post(f"{node.url}/api/rooms", json=body,
                      headers={"Authorization": f"Bearer {token('host', 'host1')}"})  # fmt: skip
    assert made.status_code == 201 and made.json()["status"] == "scheduled"
    guest = httpx.post(f"{node.url}/api/rooms/r1/guest", json={}).json()
    auth = {"Authorization": f"Bearer {guest['token']}"}
    url = f"{node.url}/api/rooms/r1/reservations"
    assert httpx.post(url).json()["code"] == "token_missing"
    first = httpx.post(url, headers=auth).json()
    assert first == {"reserved": True, "count": 1, "changed": True}
    assert httpx.post(url, headers=auth).json() == {"reserved": True, "count": 1, "changed": False}
    other = {"Authorization": f"Bearer {token('viewer', 'v2')}"}
    assert httpx.post(url, headers=other).json()["count"] == 2
    host = {"Authorization": f"Bearer {token('host', 'host1')}"}
    assert httpx.get(url, headers=host).json() == {"reserved": False, "count": 2}
    assert httpx.get(url, headers=auth).json() == {"reserved": True, "count": 2}
    assert httpx.delete(url, headers=other).json() == {"reserved": False, "count": 1}
    elsewhere = {"Authorization": f"Bearer {token('viewer', 'v2', room='r9')}"}
    gone = httpx.post(f"{node.url}/api/rooms/r9/reservations", headers=elsewhere)
    assert (gone.status_code, gone.json()["code"]) == (404, "room_not_found")
    ics = httpx.get(f"{node.url}/api/rooms/r1/calendar.ics")
    assert ics.headers["content-type"].startswith("text/calendar")
    body = ics.text
    assert body.startswith("BEGIN:VCALENDAR\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert "DTSTART:20310501T120000Z\r\n" in body and "SUMMARY:周六早市\\, 桃子\r\n" in body
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    page = httpx.get(f"{node.url}/y/r1")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
