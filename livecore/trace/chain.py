"""The batch's hash chain and its signed head (pure: no I/O).

Canonical encoding: a record is a JSON object encoded with RFC 8785 (JSON
Canonicalization Scheme: keys sorted, no whitespace, UTF-8, numbers as
ECMAScript prints them). A browser gets the same bytes from
``JSON.stringify`` with sorted keys, so it can recompute every hash itself.

- ``hash(record) = hex(SHA-256(JCS(record)))``; a record carries ``prev``, the
  hash of the record before it (``GENESIS``, 64 zeros, for record 0) and
  ``seq``, its position. Changing, dropping or reordering a record changes
  every hash after it.
- The head statement ``{"typ": "livecore.trace.head", "v": 1, "batch", "seq",
  "head", "signed_at", "kid"}`` is signed with the server's Ed25519 key over
  ``JCS(statement)``; ``kid`` names the key (first 16 hex of SHA-256 of the
  raw 32-byte public key).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS = "0" * 64
HEAD_TYPE = "livecore.trace.head"
VERSION = 1


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value (raises on NaN, infinities, ints past 2^53)."""
    return bytes(rfc8785.dumps(value))


def record_hash(record: dict[str, Any]) -> str:
    """Lowercase hex SHA-256 of the record's canonical bytes."""
    return hashlib.sha256(canonical(record)).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """The key's name in head statements: 16 hex of SHA-256 of its raw bytes."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 8037), importable by WebCrypto."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": key_id(key)}


@dataclass(frozen=True, slots=True)
class Head:
    """A chain head and the server's signature over its statement."""

    batch: str
    seq: int
    head: str
    signed_at: int
    kid: str
    sig: str  # base64url, 64 bytes

    def statement(self) -> dict[str, Any]:
        return statement(self.batch, self.seq, self.head, self.signed_at, self.kid)

    def to_dict(self) -> dict[str, Any]:
        return {**self.statement(), "sig": self.sig}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Head:
        return cls(
            batch=str(d["batch"]), seq=int(d["seq"]), head=str(d["head"]),
            signed_at=int(d["signed_at"]), kid=str(d["kid"]), sig=str(d["sig"]),
        )  # fmt: skip


def statement(batch: str, seq: int, head: str, signed_at: int, kid: str) -> dict[str, Any]:
    return {
        "typ": HEAD_TYPE, "v": VERSION, "batch": batch, "seq": seq, "head": head,
        "signed_at": signed_at, "kid": kid,
    }  # fmt: skip


def sign_head(key: Ed25519PrivateKey, batch: str, seq: int, head: str, now: int) -> Head:
    """Sign the head of a chain whose last record is ``seq`` with hash ``head``."""
    kid = key_id(key.public_key())
    sig = key.sign(canonical(statement(batch, seq, head, now, kid)))
    return Head(batch, seq, head, now, kid, b64url(sig))


def link(record: dict[str, Any], *, batch: str, seq: int, prev: str) -> dict[str, Any]:
    """The record as stored: its body plus ``v``, ``batch``, ``seq`` and ``prev``."""
    return {**record, "v": VERSION, "batch": batch, "seq": seq, "prev": prev}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What verifying a chain found; ``bad_seq`` is the first record that fails."""

    ok: bool
    reason: str
    bad_seq: int | None = None


def verify_chain(
    records: list[dict[str, Any]], head: Head, public: Ed25519PublicKey, *, batch: str
) -> Verdict:
    """Check every link, the head hash and the head signature (the offline check)."""
    prev = GENESIS
    for i, record in enumerate(records):
        if record.get("seq") != i or record.get("batch") != batch:
            return Verdict(False, f"record {i} has seq {record.get('seq')!r}", i)
        if record.get("prev") != prev:
            if i == 0:
                return Verdict(False, "record 0 does not start the chain", 0)
            return Verdict(
                False, f"record {i - 1} was changed: record {i} does not link to it", i - 1
            )
        prev = record_hash(record)
    if head.batch != batch or head.seq != len(records) - 1:
        return Verdict(
            False, f"the head covers {head.seq + 1} records, the chain has {len(records)}"
        )
    if head.head != prev:
        return Verdict(False, "the last record's hash is not the signed head", len(records) - 1)
    if head.kid != key_id(public):
        return Verdict(False, f"the head is signed by key {head.kid}, not {key_id(public)}")
    try:
        public.verify(b64url_decode(head.sig), canonical(head.statement()))
    except (InvalidSignature, ValueError):
        return Verdict(False, "the head signature does not verify")
    return Verdict(True, f"{len(records)} records, signed head verifies")
