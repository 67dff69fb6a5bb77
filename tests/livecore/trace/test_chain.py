"""The hash chain: canonical bytes, links, the signed head, and what tampering breaks."""

from __future__ import annotations

import copy
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from livecore.trace import chain

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def build(n: int = 4) -> tuple[list[dict[str, Any]], chain.Head]:
    records: list[dict[str, Any]] = []
    prev = chain.GENESIS
    for i in range(n):
        body = {"type": "planted", "at": 1_790_000_000 + i, "place": {"name": "勐海"},
                "actor": "岩温", "data": {"amount_kg": 1.5 * i}}  # fmt: skip
        record = chain.link(body, batch="b1", seq=i, prev=prev)
        records.append(record)
        prev = chain.record_hash(record)
    return records, chain.sign_head(KEY, "b1", n - 1, prev, 1_790_000_100)


def test_canonical_is_rfc8785() -> None:
    """Keys sorted, no spaces, UTF-8, numbers as ECMAScript prints them."""
    value = {"b": 1.0, "a": [0.000001, 1e21, "é", 4.5, -0.0], "c": {"z": None, "y": True}}
    assert (
        chain.canonical(value)
        == '{"a":[0.000001,1e+21,"é",4.5,0],"b":1,"c":{"y":true,"z":null}}'.encode()
    )


def test_a_built_chain_verifies() -> None:
    """Every link and the signature check out."""
    records, head = build()
    verdict = chain.verify_chain(records, head, KEY.public_key(), batch="b1")
    assert verdict.ok, verdict.reason


def test_a_changed_record_is_named() -> None:
    """Changing a middle record breaks the next link; the changed record is reported."""
    records, head = build()
    bad = copy.deepcopy(records)
    bad[1]["data"]["amount_kg"] = 99
    verdict = chain.verify_chain(bad, head, KEY.public_key(), batch="b1")
    assert not verdict.ok and verdict.bad_seq == 1


def test_a_changed_last_record_or_dropped_record_fails() -> None:
    """The last record is covered by the signed head; dropping one breaks seq."""
    records, head = build()
    last = copy.deepcopy(records)
    last[-1]["actor"] = "someone else"
    assert chain.verify_chain(last, head, KEY.public_key(), batch="b1").bad_seq == 3
    dropped = records[:1] + records[2:]
    assert not chain.verify_chain(dropped, head, KEY.public_key(), batch="b1").ok


def test_a_re_signed_head_by_another_key_fails() -> None:
    """A head signed with another key (or a forged signature) does not verify."""
    records, head = build()
    other = Ed25519PrivateKey.generate()
    forged = chain.sign_head(other, "b1", head.seq, head.head, head.signed_at)
    assert not chain.verify_chain(records, forged, KEY.public_key(), batch="b1").ok
    spoofed = chain.Head.from_dict({**head.to_dict(), "sig": forged.sig})
    assert not chain.verify_chain(records, spoofed, KEY.public_key(), batch="b1").ok
