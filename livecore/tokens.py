"""Signed role tokens: who may do what in which room.

A token is a compact JWS (HS256) whose claims say the role, the room and the
user. The check is pure: the caller passes the secret and the current time,
so tests need no clock and no server.

Rules:
- the header's ``kid`` names a key the node holds (``token_unknown_key``; none:
  the default node key, :mod:`livecore.keyring`), and the signature must verify
  with it (``token_bad_signature``);
- that key's scope must allow the token's role and room (``token_key_scope``:
  a shop key signs viewer, officer and koc tokens for its own rooms only);
- ``exp - iat`` (``exp - now`` without ``iat``) must not exceed the role's
  :data:`MAX_LIFETIME_S` (``token_lifetime``);
- ``exp`` must lie in the future (``token_expired``);
- the room claim must match the room acted on, ``"*"`` matching any room
  (``token_wrong_room``) — and ``"*"`` is honoured for admin tokens only;
- ``nbf`` (when present) must not lie in the future and ``iat`` not more than
  ``CLOCK_SKEW_S`` ahead of the clock (``token_not_yet_valid``);
- the role must be one the action allows (``token_wrong_role``).
"""

from __future__ import annotations

import math
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from livecore.errors import ErrorCode, LivecoreError
from livecore.keyring import KeyRing, SigningKey

ISSUER = "livecore"
ALGORITHM = "HS256"
ANY_ROOM = "*"
#: Longest lifetime a minted token may have (30 days: a field sensor's).
MAX_TTL_S = 30 * 24 * 3600
#: How far ahead of our clock an issuer's clock may run (``iat``/``nbf``).
CLOCK_SKEW_S = 60
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: The user ids the guest endpoint mints (``g-`` + 12 base32): a device, not an account.
GUEST_ID = re.compile(r"^g-[a-z2-7]{12}$")


class Role(StrEnum):
    """What a connection may do; the server checks it on every action."""

    HOST = "host"
    KOC = "koc"
    VIEWER = "viewer"
    #: A token role for an audience member who promotes the room; it may do what a
    #: viewer may. Not to be confused with a room's share-officer *record*
    #: (:class:`livecore.store.officers.ShareOfficer`: referral code, earnings),
    #: which any buyer gets with ``officer_apply``, whatever the token's role.
    OFFICER = "officer"
    ADMIN = "admin"
    #: A sensor in the field (soil probe, cold-chain logger): may only POST readings.
    DEVICE = "device"
    #: Another node pulling one room's stream (cascade): may only POST /whep/{room}.
    NODE = "node"
    #: A store's pickup counter (自提点): may only redeem the pickup codes of its room.
    PICKUP = "pickup"


#: The longest lifetime (``exp - iat``) of a token of each role, enforced at mint
#: and at verify (``token_lifetime``): a token cannot outlive its revocation,
#: which is kept at least :func:`longest_lifetime`.
MAX_LIFETIME_S: dict[Role, int] = {
    Role.VIEWER: 24 * 3600,
    Role.OFFICER: 24 * 3600,
    Role.KOC: 24 * 3600,
    Role.HOST: 24 * 3600,
    Role.ADMIN: 24 * 3600,
    Role.DEVICE: MAX_TTL_S,
    Role.NODE: 300,
    Role.PICKUP: 24 * 3600,
}


def longest_lifetime() -> int:
    """The longest lifetime of any role's token (how long a revocation is kept)."""
    return max(MAX_LIFETIME_S.values())


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified content of a token."""

    role: Role
    room: str
    user: str
    expires_at: int
    community: str | None = None
    #: A device token scoped to one traceability batch (claim ``bat``): valid for
    #: that batch's readings only, never for a room.
    batch: str | None = None
    #: The token's id (claim ``jti``), for revocation; None on tokens minted without.
    token_id: str | None = None
    #: When the token was minted (claim ``iat``), None on tokens minted without.
    issued_at: int | None = None

    def allows_room(self, room: str) -> bool:
        """True when this token may act in ``room``."""
        if self.batch is not None:
            return False
        if self.room == ANY_ROOM:
            return self.role is Role.ADMIN
        return self.room == room


def is_guest(user: str) -> bool:
    """Whether ``user`` is a guest's device id rather than a shop-verified account."""
    return GUEST_ID.match(user) is not None


def valid_id(value: str) -> bool:
    """Room, user and community ids: 1-64 of ``A-Z a-z 0-9 _ . : -``."""
    return bool(_ID_RE.match(value))


def mint(
    secret: bytes | SigningKey | KeyRing,
    *,
    role: Role,
    room: str,
    user: str,
    ttl_s: int,
    community: str | None = None,
    now: float | None = None,
    batch: str | None = None,
) -> str:
    """Return a signed token; raises ``ValueError`` on an id or ttl out of bounds, or a
    role or room the key may not sign. ``secret``: raw bytes (no ``kid``), a key
    (its ``kid`` in the header), or a ring (its signing node key)."""
    if not (room == ANY_ROOM or valid_id(room)):
        raise ValueError(f"room id {room!r} is not 1-64 characters of A-Z a-z 0-9 _ . : -")
    if not valid_id(user):
        raise ValueError(f"user id {user!r} is not 1-64 characters of A-Z a-z 0-9 _ . : -")
    if community is not None and not valid_id(community):
        raise ValueError(f"community id {community!r} is not 1-64 of A-Z a-z 0-9 _ . : -")
    if batch is not None and not valid_id(batch):
        raise ValueError(f"batch id {batch!r} is not 1-64 of A-Z a-z 0-9 _ . : -")
    longest = MAX_LIFETIME_S[role]
    if not 0 < ttl_s <= longest:
        raise ValueError(f"ttl of a {role.value} token must be between 1 s and {longest} s")
    key = secret.signing if isinstance(secret, KeyRing) else secret
    if isinstance(key, SigningKey) and not key.may_sign(role.value, room):
        raise ValueError(f"key {key.kid!r} may not sign a {role.value} token for room {room!r}")
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user,
        "role": role.value,
        "room": room,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_urlsafe(9),
    }
    if community is not None:
        payload["cty"] = community
    if batch is not None:
        payload["bat"] = batch
    if isinstance(key, SigningKey):
        return jwt.encode(payload, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def _fail(code: ErrorCode, message: str) -> LivecoreError:
    return LivecoreError(code, message)


def verify(
    secret: bytes | KeyRing,
    token: str | None,
    *,
    now: float,
    room: str | None = None,
    roles: frozenset[Role] | None = None,
) -> Claims:
    """Check ``token`` and return its claims, or raise :class:`LivecoreError`.

    ``room`` (when given) is the room acted on; ``roles`` (when given) the
    roles the action allows. ``now`` is the current Unix time. With a ring, the
    header's ``kid`` names the key (none: the default node key) and the key's
    scope must allow the token's role and room.
    """
    if not token:
        raise _fail(ErrorCode.TOKEN_MISSING, "a token is required (Authorization: Bearer <token>)")
    if len(token) > 2048:
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token is longer than 2048 characters")
    key = _key_of(secret, token)
    try:
        payload = jwt.decode(
            token,
            key.secret if isinstance(key, SigningKey) else key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "verify_exp": False,  # checked below against the injected clock
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "sub", "iss"],
            },
        )
    except jwt.InvalidSignatureError:
        raise _fail(ErrorCode.TOKEN_BAD_SIGNATURE, "token signature does not verify") from None
    except jwt.PyJWTError as exc:
        raise _fail(ErrorCode.TOKEN_MALFORMED, f"token is not a livecore token: {exc}") from None
    claims = _claims_from(payload)
    if isinstance(key, SigningKey) and not key.may_sign(claims.role.value, claims.room):
        raise _fail(
            ErrorCode.TOKEN_KEY_SCOPE,
            f"key {key.kid!r} may not sign a {claims.role.value} token for room {claims.room!r}",
        )
    issued = claims.issued_at if claims.issued_at is not None else int(now)
    if claims.expires_at - issued > MAX_LIFETIME_S[claims.role]:
        raise _fail(
            ErrorCode.TOKEN_LIFETIME,
            f"a {claims.role.value} token lives at most {MAX_LIFETIME_S[claims.role]} s "
            f"(exp - iat is {claims.expires_at - issued} s)",
        )
    for name in ("nbf", "iat"):
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _fail(ErrorCode.TOKEN_MALFORMED, f"token {name} claim is not a number")
        if value > now + CLOCK_SKEW_S:
            raise _fail(ErrorCode.TOKEN_NOT_YET_VALID, f"token is not valid before {int(value)}")
    if claims.expires_at <= now:
        raise _fail(ErrorCode.TOKEN_EXPIRED, f"token expired at {claims.expires_at} (Unix time)")
    if room is not None and not claims.allows_room(room):
        where = f"batch {claims.batch!r}" if claims.batch is not None else f"room {claims.room!r}"
        raise _fail(ErrorCode.TOKEN_WRONG_ROOM, f"token is for {where}, not room {room!r}")
    if roles is not None and claims.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise _fail(
            ErrorCode.TOKEN_WRONG_ROLE,
            f"role {claims.role.value!r} may not do this (allowed: {allowed})",
        )
    return claims


def _key_of(secret: bytes | KeyRing, token: str) -> bytes | SigningKey:
    """The key ``token`` names in its header (``kid``), from the ring."""
    if not isinstance(secret, KeyRing):
        return secret
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise _fail(ErrorCode.TOKEN_MALFORMED, f"token is not a livecore token: {exc}") from None
    if kid is not None and not isinstance(kid, str):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token kid header is not a string")
    key = secret.get(kid)
    if key is None:
        raise _fail(ErrorCode.TOKEN_UNKNOWN_KEY, f"no key {kid!r} here (retired, or never added)")
    return key


def _claims_from(payload: dict[str, Any]) -> Claims:
    try:
        role = Role(str(payload.get("role")))
    except ValueError:
        raise _fail(ErrorCode.TOKEN_MALFORMED, f"unknown role {payload.get('role')!r}") from None
    room, user, exp = payload.get("room"), payload.get("sub"), payload.get("exp")
    community = payload.get("cty")
    batch = payload.get("bat")
    token_id = payload.get("jti")
    if token_id is not None and (not isinstance(token_id, str) or not 1 <= len(token_id) <= 64):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token jti claim is not a string of 1-64")
    if not isinstance(room, str) or not (room == ANY_ROOM or valid_id(room)):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token has no valid room claim")
    if not isinstance(user, str) or not valid_id(user):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token has no valid sub (user id) claim")
    if not isinstance(exp, int):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token exp claim is not an integer")
    if community is not None and (not isinstance(community, str) or not valid_id(community)):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token cty (community) claim is not a valid id")
    if batch is not None and (not isinstance(batch, str) or not valid_id(batch)):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token bat (batch) claim is not a valid id")
    issued = payload.get("iat")
    if issued is not None and (
        isinstance(issued, bool) or not isinstance(issued, int | float) or not math.isfinite(issued)
    ):
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token iat claim is not a number")
    return Claims(
        role=role, room=room, user=user, expires_at=exp, community=community, batch=batch,
        token_id=token_id, issued_at=int(issued) if issued is not None else None,
    )  # fmt: skip


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
