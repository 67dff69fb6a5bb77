"""REST for rooms through a real node."""

from __future__ import annotations

import httpx

from livecore import tokens
from livecore.tokens import Role
from tests.helpers import TEST_SECRET, Node

SECRET = TEST_SECRET.encode()


def token(
    role: Role = Role.HOST, room: str = "r1", ttl: int = 600, now: float | None = None
) -> dict[str, str]:
    value = tokens.mint(SECRET, role=role, room=room, user="alice", ttl_s=ttl, now=now)
    return {"Authorization": f"Bearer {value}"}


BODY = {
    "id": "r1",
    "title": "Peach picking",
    "store": "Green Farm",
    "starts_at": "2027-05-01T10:00:00Z",
}


def test_host_creates_and_anyone_reads(node: Node) -> None:
    """201 with Location; GET returns the public state without a token."""
    made = httpx.post(f"{node.url}/api/rooms", json=BODY, headers=token())
    assert made.status_code == 201, made.text
    assert made.headers["location"] == "/api/rooms/r1"
    got = httpx.get(f"{node.url}/api/rooms/r1").json()
    assert got["title"] == "Peach picking" and got["host"] == "alice"
    assert got["starts_at"] == "2027-05-01T10:00:00Z" and got["status"] == "scheduled"
    listed = httpx.get(f"{node.url}/api/rooms").json()["rooms"]
    assert [r["id"] for r in listed] == ["r1"]


def test_refusals_have_codes(node: Node) -> None:
    """Each refusal answers JSON with a stable code and a message."""
    url = f"{node.url}/api/rooms"
    cases = [
        (httpx.post(url, json=BODY), 401, "token_missing"),
        (httpx.post(url, json=BODY, headers=token(Role.VIEWER)), 403, "token_wrong_role"),
        (httpx.post(url, json=BODY, headers=token(room="other")), 403, "token_wrong_room"),
        (httpx.post(url, json=BODY, headers=token(now=1_000_000_000)), 401, "token_expired"),
        (httpx.post(url, json=BODY, headers={"Authorization": "Bearer x.y.z"}), 401,
         "token_malformed"),
        (httpx.post(url, content=b"{", headers=token() | {"content-type": "application/json"}),
         400, "bad_request"),
        (httpx.post(url, content=b"id=r1", headers=token()), 415, "unsupported_media_type"),
        (httpx.post(url, json={**BODY, "title": ""}, headers=token()), 422, "invalid_field"),
        (httpx.post(url, json={"id": "r1", "title": "t", "store": "s", "pad": "x" * 20000},
                    headers=token()), 413, "body_too_large"),
        (httpx.get(f"{node.url}/api/rooms/missing"), 404, "room_not_found"),
        (httpx.get(f"{node.url}/api/nothing"), 404, "not_found"),
        (httpx.delete(f"{node.url}/healthz"), 405, "method_not_allowed"),
    ]  # fmt: skip
    for answer, status, code in cases:
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["code"] == code and body["message"]


def test_duplicate_room_is_conflict(node: Node) -> None:
    """A second create of the same id is 409 room_exists."""
    assert httpx.post(f"{node.url}/api/rooms", json=BODY, headers=token()).status_code == 201
    again = httpx.post(f"{node.url}/api/rooms", json=BODY, headers=token())
    assert again.status_code == 409 and again.json()["code"] == "room_exists"


def test_writes_are_limited_per_user(node: Node) -> None:
    """Past their burst of 20, one user's writes get 429 rate_limited with Retry-After;
    other users behind the same address (carrier-grade NAT) still write."""
    statuses = []
    with httpx.Client() as client:
        for i in range(200):  # until refused: the bucket refills 5/s while this runs
            if 429 in statuses:
                break
            body = {**BODY, "id": f"x{i}"}
            answer = client.post(f"{node.url}/api/rooms", json=body, headers=token(room=f"x{i}"))
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json()["code"] == "rate_limited"
                assert int(answer.headers["retry-after"]) >= 1
                assert httpx.get(f"{node.url}/api/rooms/x{i}").status_code == 404
        assert 429 in statuses and statuses[:20] == [201] * 20
        for i in range(40):  # forty hosts, one address: none of them is refused
            value = tokens.mint(SECRET, role=Role.HOST, room=f"y{i}", user=f"host{i}", ttl_s=60)
            answer = client.post(f"{node.url}/api/rooms", json={**BODY, "id": f"y{i}"},
                                 headers={"Authorization": f"Bearer {value}"})  # fmt: skip
            assert answer.status_code == 201, answer.text


def test_pages_and_metrics(node: Node) -> None:
    """The host and viewer pages are served (phone viewport); /metrics is Prometheus text."""
    for path in ("/host/r1", "/r/r1"):
        page = httpx.get(f"{node.url}{path}")
        assert page.status_code == 200
        assert 'name="viewport"' in page.text
    metrics = httpx.get(f"{node.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "livecore_http_requests_total" in metrics.text
    assert "livecore_uptime_seconds" in metrics.text
