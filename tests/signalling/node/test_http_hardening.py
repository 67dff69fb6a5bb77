"""Hostile or odd HTTP input found by a client written from docs/protocol.md."""

from __future__ import annotations

from pathlib import Path

import httpx

from livecore.tokens import Role
from tests.helpers import Node, free_port, token

BODY = {"id": "r1", "title": "Peach picking", "store": "Green Farm"}


def auth(role: str = "host", room: str = "r1", user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, user, room)}"}


def test_non_finite_and_deep_bodies_are_4xx(node: Node) -> None:
    """starts_at NaN/Infinity and a JSON body nested 5,000 deep are refused, not 500."""
    url = f"{node.url}/api/rooms"
    headers = auth() | {"content-type": "application/json"}
    for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = '{"id": "r1", "title": "t", "store": "s", "starts_at": ' + raw + "}"
        answer = httpx.post(url, content=body.encode(), headers=headers)
        assert answer.status_code == 422, (raw, answer.text)
        assert answer.json()["code"] == "invalid_field"
    deep = b"[" * 5000 + b"]" * 5000
    answer = httpx.post(url, content=deep, headers=headers)
    assert answer.status_code == 400 and answer.json()["code"] == "bad_request", answer.text


def test_405_carries_allow(node: Node) -> None:
    """Every 405 lists the methods the resource allows (RFC 9110 §15.5.6)."""
    answer = httpx.delete(f"{node.url}/healthz")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    answer = httpx.put(f"{node.url}/api/rooms")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_any_room_token_only_for_admin(node: Node) -> None:
    """A host token for room * neither creates rooms nor reads one; admin * does."""
    url = f"{node.url}/api/rooms"
    answer = httpx.post(url, json=BODY, headers=auth("host", "*"))
    assert answer.status_code == 403 and answer.json()["code"] == "token_wrong_room"
    answer = httpx.post(url, json=BODY, headers=auth("admin", "*"))
    assert answer.status_code == 201, answer.text


#: A low per-address limit, so that a test reaches it in a few requests.
LOW_ADDRESS_LIMIT = ["--address-rate", "0.1", "--address-burst", "10"]


def test_forwarded_for_ignored_without_trusted_proxy(tmp_path: Path, redis_url: str) -> None:
    """Varying X-Forwarded-For from an untrusted peer does not escape the address limit
    (users all distinct, so only the address can refuse)."""
    node = Node(tmp_path / "n", redis_url=redis_url, extra_args=LOW_ADDRESS_LIMIT).start()
    statuses = []
    try:
        with httpx.Client() as client:
            for i in range(20):
                body = {**BODY, "id": f"x{i}"}
                headers = auth(room=f"x{i}", user=f"u{i}") | {"X-Forwarded-For": f"10.0.{i}.1"}
                answer = client.post(f"{node.url}/api/rooms", json=body, headers=headers)
                statuses.append(answer.status_code)
        assert statuses[:10] == [201] * 10 and 429 in statuses
        assert int(answer.headers["retry-after"]) >= 5  # 0.1/s: a token in 10 s
    finally:
        node.stop()


def test_forwarded_for_honoured_from_trusted_proxy(tmp_path: Path, redis_url: str) -> None:
    """With --trusted-proxy 127.0.0.1, each forwarded client has its own address bucket."""
    flags = ["--trusted-proxy", "127.0.0.1", *LOW_ADDRESS_LIMIT]
    node = Node(tmp_path / "n", redis_url=redis_url, extra_args=flags).start()
    try:
        with httpx.Client() as client:
            for i in range(20):
                body = {**BODY, "id": f"x{i}"}
                headers = auth(room=f"x{i}", user=f"u{i}") | {"X-Forwarded-For": f"10.0.{i}.1"}
                answer = client.post(f"{node.url}/api/rooms", json=body, headers=headers)
                assert answer.status_code == 201, answer.text
    finally:
        node.stop()


def test_store_down_is_503(tmp_path: Path) -> None:
    """With Valkey gone, POST /api/rooms answers 503 store_unavailable (never 500)."""
    from livecore.valkey.embedded import EmbeddedValkey

    valkey = EmbeddedValkey(tmp_path / "vk", tcp_port=free_port())
    valkey.start()
    node = Node(tmp_path / "n", redis_url=valkey.tcp_url).start()
    try:
        valkey.stop()
        answer = httpx.post(f"{node.url}/api/rooms", json=BODY, headers=auth(), timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "store_unavailable"
        assert httpx.get(f"{node.url}/api/rooms/r1", timeout=30).status_code == 503
    finally:
        node.stop()


_ = Role
