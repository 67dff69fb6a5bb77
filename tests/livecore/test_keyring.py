"""Signing keys: kids, scopes (node and shop keys), lifetimes per role, rotation."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.keyring import KeyFileError, KeyRing, KeyScope, SigningKey, parse_key, ring_of
from livecore.tokens import Role

NOW = 1_800_000_000.0
LEGACY = b"n" * 32
SHOP = SigningKey("shop-fresh", b"f" * 32, KeyScope.SHOP, "fresh-")
NODE2 = SigningKey("node-2026", b"m" * 32)
RING = KeyRing((SigningKey("node", LEGACY), SHOP, NODE2), signing_kid="node-2026")


def code_of(token: str, ring: KeyRing = RING, **kw: object) -> ErrorCode:
    with pytest.raises(LivecoreError) as info:
        tokens.verify(ring, token, **{"now": NOW, **kw})  # type: ignore[arg-type]
    assert info.value.message
    return info.value.code


def test_a_shop_key_mints_only_its_customers_in_its_rooms() -> None:
    """A shop key signs viewer/officer/koc tokens for its rooms; never admin, host, node,
    or another shop's room — refused at mint and, for a hand-made token, at verify."""
    for role in (Role.VIEWER, Role.OFFICER, Role.KOC):
        good = tokens.mint(SHOP, role=role, room="fresh-0612", user="u1", ttl_s=600, now=NOW)
        assert jwt.get_unverified_header(good)["kid"] == "shop-fresh"
        assert tokens.verify(RING, good, now=NOW, room="fresh-0612").role is role
    for role, room in ((Role.ADMIN, "*"), (Role.ADMIN, "fresh-1"), (Role.HOST, "fresh-1"),
                       (Role.NODE, "fresh-1"), (Role.VIEWER, "other-1")):  # fmt: skip
        with pytest.raises(ValueError, match="may not sign"):
            tokens.mint(SHOP, role=role, room=room, user="u1", ttl_s=60, now=NOW)
        claims = {"iss": "livecore", "sub": "u1", "role": role.value, "room": room,
                  "iat": int(NOW), "exp": int(NOW) + 60}  # fmt: skip
        forged = jwt.encode(claims, SHOP.secret, algorithm="HS256", headers={"kid": SHOP.kid})
        assert code_of(forged) is ErrorCode.TOKEN_KEY_SCOPE


def test_lifetimes_are_capped_per_role_at_mint_and_verify() -> None:
    """A token longer-lived than its role allows is refused ``token_lifetime`` (a far
    ``exp`` would outlive its revocation); without ``iat`` the clock stands in."""
    with pytest.raises(ValueError, match="ttl"):
        tokens.mint(RING, role=Role.VIEWER, room="r1", user="u1", ttl_s=2 * 86400, now=NOW)
    long_lived = {"iss": "livecore", "sub": "u1", "role": "host", "room": "r1",
                  "iat": int(NOW), "exp": int(NOW) + 90 * 86400}  # fmt: skip
    assert code_of(jwt.encode(long_lived, LEGACY, algorithm="HS256")) is ErrorCode.TOKEN_LIFETIME
    del long_lived["iat"]
    assert code_of(jwt.encode(long_lived, LEGACY, algorithm="HS256")) is ErrorCode.TOKEN_LIFETIME
    device = tokens.mint(RING, role=Role.DEVICE, room="r1", user="d", ttl_s=30 * 86400, now=NOW)
    assert tokens.verify(RING, device, now=NOW).role is Role.DEVICE
    assert tokens.longest_lifetime() == tokens.MAX_TTL_S


def test_rotation_keeps_old_kids_until_they_are_retired() -> None:
    """The ring signs with the key marked signing; tokens of the old key (and kid-less
    ones, the legacy secret) verify until that key leaves the ring."""
    new = tokens.mint(RING, role=Role.HOST, room="r1", user="h", ttl_s=60, now=NOW)
    assert jwt.get_unverified_header(new)["kid"] == "node-2026"
    old = tokens.mint(LEGACY, role=Role.HOST, room="r1", user="h", ttl_s=60, now=NOW)
    for token in (new, old):
        assert tokens.verify(RING, token, now=NOW, room="r1").user == "h"
    retired = KeyRing((SHOP, NODE2), signing_kid="node-2026")
    assert code_of(old, retired) is ErrorCode.TOKEN_UNKNOWN_KEY
    stranger = jwt.encode({"iss": "livecore", "sub": "u", "role": "viewer", "room": "r1",
                           "exp": int(NOW) + 60}, b"x" * 32, algorithm="HS256",
                          headers={"kid": "who"})  # fmt: skip
    assert code_of(stranger) is ErrorCode.TOKEN_UNKNOWN_KEY
    forged = jwt.encode({"iss": "livecore", "sub": "u", "role": "admin", "room": "*",
                         "exp": int(NOW) + 60}, SHOP.secret, algorithm="HS256",
                        headers={"kid": "node-2026"})  # fmt: skip
    assert code_of(forged) is ErrorCode.TOKEN_BAD_SIGNATURE


def test_key_files(tmp_path: Path) -> None:
    """Key files are JSON; bad ones are refused with their name; one signing node key."""
    good = {"kid": "shop-a", "scope": "shop", "rooms": "a-", "secret": "k" * 32}
    (tmp_path / "shop-a.json").write_text(json.dumps(good))
    (tmp_path / "n2.json").write_text(
        json.dumps({"kid": "n2", "scope": "node", "secret": "z" * 40, "sign": True})
    )
    ring = ring_of(LEGACY, tmp_path.glob("*.json"))
    assert ring.signing.kid == "n2" and ring.get(None) is not None
    assert ring.get("shop-a") == SigningKey("shop-a", b"k" * 32, KeyScope.SHOP, "a-")
    bads = [{"secret": "short"}, {"rooms": ""}, {"sign": True}, {"scope": "admin"},
            {"extra": 1}, {"kid": "a b"}]  # fmt: skip
    for bad in ({**good, **change} for change in bads):
        with pytest.raises(KeyFileError, match=r"bad\.json"):
            parse_key(json.dumps(bad), "bad.json")
    with pytest.raises(KeyFileError):
        parse_key("not json", "x.json")
