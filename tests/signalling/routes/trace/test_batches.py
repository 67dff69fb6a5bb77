"""A batch's life through the REST API of a real node: the chain verifies
offline, a record edited in Valkey is detected, device tokens stay in their
batch, and every bad input is refused without changing anything."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from livecore.store.trace import key
from livecore.trace import chain
from tests.helpers import Node, create_room, token
from tests.signalling.routes.trace.trace_helpers import (
    REPORT,
    brand,
    device_token,
    life,
    post_readings,
    register,
)

BATCH = "tea-2026-001"


def offline_verdict(base: str, batch: str = BATCH) -> chain.Verdict:
    """What anyone holding the chain and the public key finds."""
    body = httpx.get(f"{base}/api/batches/{batch}/chain").json()
    jwk = httpx.get(f"{base}/api/trace/key").json()["keys"][0]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public = Ed25519PublicKey.from_public_bytes(chain.b64url_decode(jwk["x"]))
    return chain.verify_chain(
        body["records"], chain.Head.from_dict(body["head"]), public, batch=batch
    )


def test_a_batch_life_verifies_and_tampering_is_detected(node: Node, redis_url: str) -> None:
    """Registered, planted … shipped: 7 linked records, verified offline and by the node;
    then one record edited straight in Valkey is found, by record."""
    records = life(node.url)
    assert [r["type"] for r in records] == [
        "registered",
        "planted",
        "fertilised",
        "harvested",
        "processed",
        "tested",
        "shipped",
    ]
    assert records[5]["data"]["report"]["size"] == len(REPORT)
    assert offline_verdict(node.url).ok
    view = httpx.get(f"{node.url}/api/batches/{BATCH}").json()
    assert view["verified"] and view["batch"]["stage"] == "shipped" and view["rooms"] == ["r1"]
    sha = records[5]["data"]["report"]["sha256"]
    report = httpx.get(f"{node.url}/api/batches/{BATCH}/reports/{sha}")
    assert report.content == REPORT and report.headers["etag"] == f'"{sha}"'

    store = redis.Redis.from_url(redis_url)
    edited = dict(records[3], data={"quantity_kg": 850})  # ten times the harvest
    store.lset(key(BATCH, "chain"), 3, chain.canonical(edited))
    verdict = offline_verdict(node.url)
    assert not verdict.ok and verdict.bad_seq == 3, verdict.reason
    assert httpx.get(f"{node.url}/api/batches/{BATCH}").json()["verified"] is False


def test_device_tokens_stay_in_their_batch(node: Node) -> None:
    """A batch's device token writes that batch's series only: not another batch,
    not a room; a room's device token cannot write a batch."""
    life(node.url)
    assert register(node.url, "other-batch").status_code == 201
    create_room(node.url)
    tok = device_token(node.url, BATCH)
    now = time.time()
    ok = post_readings(node.url, BATCH, tok, [{"kind": "cold_chain_c", "value": 4, "at": now}])
    assert ok.status_code == 202, ok.text
    other = post_readings(node.url, "other-batch", tok, [{"kind": "cold_chain_c", "value": 4}])
    assert other.status_code == 403 and other.json()["code"] == "token_wrong_batch"
    room = httpx.post(
        f"{node.url}/api/rooms/r1/sensors", json={"readings": [{"kind": "t", "value": 1}]},
        headers={"Authorization": f"Bearer {tok}"},
    )  # fmt: skip
    assert room.status_code == 403 and room.json()["code"] == "token_wrong_room"
    room_device = token("device", "probe", "r1")
    wrong = post_readings(node.url, BATCH, room_device, [{"kind": "cold_chain_c", "value": 4}])
    assert wrong.json()["code"] == "token_wrong_batch"
    event = httpx.post(f"{node.url}/api/batches/{BATCH}/events", json={},
                       headers={"Authorization": f"Bearer {tok}"})  # fmt: skip
    assert event.status_code == 403
    series = httpx.get(f"{node.url}/api/batches/{BATCH}/series").json()["series"]
    assert [s["count"] for s in series] == [1]


def test_bad_input_is_refused_and_changes_nothing(node: Node, redis_url: str) -> None:
    """Unknown batches 404 (JSON); out-of-range, future, ancient, oversized, floods and
    strangers' writes are refused with their documented codes."""
    life(node.url)
    store = redis.Redis.from_url(redis_url)
    before = store.lrange(key(BATCH, "chain"), 0, -1)
    for path in ("", "/chain", "/series"):
        answer = httpx.get(f"{node.url}/api/batches/nope{path}")
        assert answer.status_code == 404 and answer.json()["code"] == "batch_not_found"
    assert httpx.get(f"{node.url}/t/nope").status_code == 404
    assert register(node.url).json()["code"] == "batch_exists"
    ev = {"type": "delivered", "place": {"name": "杭州 西溪澄园"}, "actor": "王阿姨"}
    stranger = httpx.post(f"{node.url}/api/batches/{BATCH}/events", json=ev, headers=brand("b2"))
    assert stranger.json()["code"] == "not_batch_owner"
    late = httpx.post(
        f"{node.url}/api/batches/{BATCH}/events",
        json={**ev, "type": "fertilised", "data": {"fertiliser": "x"}},
        headers=brand(),
    )
    assert late.json()["code"] == "out_of_order"
    future = httpx.post(
        f"{node.url}/api/batches/{BATCH}/events",
        json={**ev, "at": time.time() + 86400},
        headers=brand(),
    )
    assert future.json()["code"] == "bad_timestamp"
    big = httpx.post(f"{node.url}/api/batches/{BATCH}/reports", content=b"%PDF" + b"x" * (1 << 20),
                     headers={**brand(), "Content-Type": "application/pdf"})  # fmt: skip
    assert big.status_code == 413 and big.json()["code"] == "body_too_large"
    exe = httpx.post(f"{node.url}/api/batches/{BATCH}/reports", content=b"MZ",
                     headers={**brand(), "Content-Type": "application/x-msdownload"})  # fmt: skip
    assert exe.json()["code"] == "unsupported_media_type"
    assert store.lrange(key(BATCH, "chain"), 0, -1) == before

    tok = device_token(node.url, BATCH)
    now = time.time()
    cases = {
        "out_of_range": [{"kind": "cold_chain_c", "value": 95, "at": now}],
        "bad_timestamp": [{"kind": "cold_chain_c", "value": 4, "at": now + 3600}],
        "invalid_field": [{"kind": "cold_chain_c", "value": "cold"}],
    }
    for code, readings in cases.items():
        answer = post_readings(node.url, BATCH, tok, readings)
        assert answer.json()["code"] == code, answer.text
    old = [{"kind": "cold_chain_c", "value": 4, "at": now - 90 * 86400}]
    ancient = post_readings(node.url, BATCH, tok, old)
    assert ancient.json()["code"] == "bad_timestamp"
    assert not store.exists(key(BATCH, "series"))
    # 30 at once (the budget is 2/s, bursts of 10): however slow the machine, the
    # bucket cannot refill between them.
    one = [{"kind": "cold_chain_c", "value": 4}]
    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(lambda _: post_readings(node.url, BATCH, tok, one).status_code,
                              range(30)))  # fmt: skip
    assert 429 in codes
    flood = [{"kind": "cold_chain_c", "value": 4, "at": now - i} for i in range(500)]
    budget = [post_readings(node.url, BATCH, device_token(node.url, BATCH, "d2"), flood)]
    assert budget[0].status_code == 202
    head = json.loads(store.hget(key(BATCH, "head"), "sig") or b"{}")
    assert head["seq"] == 6
