"""Token minting and every way verification refuses a token."""

from __future__ import annotations

import jwt
import pytest

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import Role

SECRET = b"s" * 32
NOW = 1_800_000_000.0


def mint(**kw: object) -> str:
    args: dict[str, object] = {"role": Role.HOST, "room": "r1", "user": "u1", "ttl_s": 60}
    args.update(kw)
    return tokens.mint(SECRET, now=NOW, **args)  # type: ignore[arg-type]


def refused(token: str | None, code: ErrorCode, **kw: object) -> LivecoreError:
    with pytest.raises(LivecoreError) as info:
        tokens.verify(SECRET, token, **{"now": NOW, **kw})  # type: ignore[arg-type]
    assert info.value.code is code
    assert info.value.message
    return info.value


def test_round_trip_keeps_claims() -> None:
    """A minted token verifies and carries role, room, user, community and expiry."""
    claims = tokens.verify(
        SECRET, mint(community="c9"), now=NOW, room="r1", roles=frozenset({Role.HOST})
    )
    assert claims.token_id  # every minted token has an id (jti), for revocation
    expected = tokens.Claims(
        Role.HOST, "r1", "u1", int(NOW) + 60, "c9", token_id=claims.token_id, issued_at=int(NOW)
    )
    assert claims == expected


def test_missing_token() -> None:
    """No token at all is token_missing."""
    refused(None, ErrorCode.TOKEN_MISSING)
    refused("", ErrorCode.TOKEN_MISSING)


def test_bad_signature() -> None:
    """A token signed with another secret is token_bad_signature."""
    other = tokens.mint(b"o" * 32, role=Role.HOST, room="r1", user="u1", ttl_s=60, now=NOW)
    refused(other, ErrorCode.TOKEN_BAD_SIGNATURE)


def test_tampered_payload_fails_signature() -> None:
    """Changing the role in the payload breaks the signature."""
    head, _, sig = mint(role=Role.VIEWER).split(".")
    forged_payload = jwt.encode({"x": 1}, SECRET, algorithm="HS256").split(".")[1]
    refused(f"{head}.{forged_payload}.{sig}", ErrorCode.TOKEN_BAD_SIGNATURE)


def test_expired() -> None:
    """A token past its exp is token_expired; one second before it is fine."""
    token = mint(ttl_s=10)
    tokens.verify(SECRET, token, now=NOW + 9)
    err = refused(token, ErrorCode.TOKEN_EXPIRED, now=NOW + 10)
    assert "expired" in err.message


def test_wrong_room() -> None:
    """A token for room r1 is refused in room r2 with both names in the message."""
    err = refused(mint(), ErrorCode.TOKEN_WRONG_ROOM, room="r2")
    assert "r1" in err.message and "r2" in err.message


def test_any_room_matches_every_room() -> None:
    """An admin token minted for '*' is valid in any room."""
    token = mint(role=Role.ADMIN, room=tokens.ANY_ROOM)
    assert tokens.verify(SECRET, token, now=NOW, room="anything").role is Role.ADMIN


def test_wrong_role() -> None:
    """A viewer token is refused where only hosts may act, naming the allowed roles."""
    err = refused(mint(role=Role.VIEWER), ErrorCode.TOKEN_WRONG_ROLE, roles=frozenset({Role.HOST}))
    assert "viewer" in err.message and "host" in err.message


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "x" * 3000],
)
def test_malformed(token: str) -> None:
    """Strings that are not tokens are token_malformed."""
    refused(token, ErrorCode.TOKEN_MALFORMED)


def test_unknown_role_is_malformed() -> None:
    """A well-signed token with a role we do not know is refused."""
    token = jwt.encode(
        {"iss": "livecore", "sub": "u", "role": "root", "room": "r", "exp": int(NOW) + 5},
        SECRET,
        algorithm="HS256",
    )
    refused(token, ErrorCode.TOKEN_MALFORMED)


def test_other_algorithm_is_refused() -> None:
    """alg=none tokens never verify."""
    token = jwt.encode({"iss": "livecore", "sub": "u", "exp": int(NOW) + 5}, None, algorithm="none")
    refused(token, ErrorCode.TOKEN_MALFORMED)


@pytest.mark.parametrize(
    "kw",
    [
        {"room": "bad room"},
        {"user": ""},
        {"ttl_s": 0},
        {"ttl_s": tokens.MAX_TTL_S + 1},
        {"community": "é"},
    ],
)
def test_mint_rejects_bad_input(kw: dict[str, object]) -> None:
    """Minting refuses ids out of the alphabet and lifetimes out of range."""
    with pytest.raises(ValueError):
        mint(**kw)


def test_bearer_header() -> None:
    """Only 'Bearer <token>' headers carry a token."""
    assert tokens.bearer("Bearer abc") == "abc"
    assert tokens.bearer("bearer  abc ") == "abc"
    assert tokens.bearer("Basic abc") is None
    assert tokens.bearer(None) is None
    assert tokens.bearer("Bearer ") is None


def test_a_batch_device_token_is_valid_for_no_room() -> None:
    """A token with a ``bat`` claim carries the batch and is refused for any room."""
    token = mint(role=Role.DEVICE, room="b1", batch="b1")
    assert tokens.verify(SECRET, token, now=NOW).batch == "b1"
    message = refused(token, ErrorCode.TOKEN_WRONG_ROOM, room="b1").message
    assert "batch 'b1'" in message


def test_any_room_is_for_admin_only() -> None:
    """A `*` token verifies for any room as admin, and for no room as another role."""
    import jwt as _jwt

    from livecore import tokens as t
    from livecore.errors import ErrorCode as E
    from livecore.errors import LivecoreError as LE

    secret = b"s" * 32
    admin = t.mint(secret, role=t.Role.ADMIN, room="*", user="ops", ttl_s=60, now=1000)
    assert t.verify(secret, admin, now=1001, room="r9").room == "*"
    for role in ("host", "viewer", "koc", "officer"):
        payload = {"iss": "livecore", "sub": "u", "role": role, "room": "*", "exp": 2000}
        forged = _jwt.encode(payload, secret, algorithm="HS256")
        try:
            t.verify(secret, forged, now=1001, room="r9")
        except LE as exc:
            assert exc.code is E.TOKEN_WRONG_ROOM
        else:
            raise AssertionError(f"{role} * token accepted")


def test_nbf_and_iat_in_the_future_are_refused() -> None:
    """nbf or iat ahead of the clock (beyond 60 s of skew) is token_not_yet_valid."""
    import jwt as _jwt

    from livecore import tokens as t
    from livecore.errors import ErrorCode as E
    from livecore.errors import LivecoreError as LE

    secret = b"s" * 32
    base = {"iss": "livecore", "sub": "u", "role": "viewer", "room": "r1", "exp": 10_000}
    for extra in ({"nbf": 5000}, {"iat": 5000}):
        token = _jwt.encode({**base, **extra}, secret, algorithm="HS256")
        try:
            t.verify(secret, token, now=1000, room="r1")
        except LE as exc:
            assert exc.code is E.TOKEN_NOT_YET_VALID
        else:
            raise AssertionError(f"{extra} accepted")
        assert t.verify(secret, token, now=4990, room="r1").user == "u"  # within the skew
