"""Signed role tokens: who may do what in which room.

A token is a compact JWS (HS256) whose claims say the role, the room and the
user. The check is pure: the caller passes the secret and the current time,
so tests need no clock and no server.

Rules:
- the signature must verify with the server's secret (``token_bad_signature``);
- ``exp`` must lie in the future (``token_expired``);
- the room claim must match the room acted on, ``"*"`` matching any room
  (``token_wrong_room``) — and ``"*"`` is honoured for admin tokens only;
- ``nbf`` (when present) must not lie in the future and ``iat`` not more than
  ``CLOCK_SKEW_S`` ahead of the clock (``token_not_yet_valid``);
- the role must be one the action allows (``token_wrong_role``).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from livecore.errors import ErrorCode, LivecoreError

ISSUER = "livecore"
ALGORITHM = "HS256"
ANY_ROOM = "*"
#: Longest lifetime a minted token may have (30 days).
MAX_TTL_S = 30 * 24 * 3600
#: How far ahead of our clock an issuer's clock may run (``iat``/``nbf``).
CLOCK_SKEW_S = 60
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


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

    def allows_room(self, room: str) -> bool:
        """True when this token may act in ``room``."""
        if self.batch is not None:
            return False
        if self.room == ANY_ROOM:
            return self.role is Role.ADMIN
        return self.room == room


def valid_id(value: str) -> bool:
    """Room, user and community ids: 1-64 of ``A-Z a-z 0-9 _ . : -``."""
    return bool(_ID_RE.match(value))


def mint(
    secret: bytes,
    *,
    role: Role,
    room: str,
    user: str,
    ttl_s: int,
    community: str | None = None,
    now: float | None = None,
    batch: str | None = None,
) -> str:
    """Return a signed token; raises ``ValueError`` on an id or ttl out of bounds."""
    if not (room == ANY_ROOM or valid_id(room)):
        raise ValueError(f"room id {room!r} is not 1-64 characters of A-Z a-z 0-9 _ . : -")
    if not valid_id(user):
        raise ValueError(f"user id {user!r} is not 1-64 characters of A-Z a-z 0-9 _ . : -")
    if community is not None and not valid_id(community):
        raise ValueError(f"community id {community!r} is not 1-64 of A-Z a-z 0-9 _ . : -")
    if batch is not None and not valid_id(batch):
        raise ValueError(f"batch id {batch!r} is not 1-64 of A-Z a-z 0-9 _ . : -")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be between 1 s and {MAX_TTL_S} s, got {ttl_s}")
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
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def _fail(code: ErrorCode, message: str) -> LivecoreError:
    return LivecoreError(code, message)


def verify(
    secret: bytes,
    token: str | None,
    *,
    now: float,
    room: str | None = None,
    roles: frozenset[Role] | None = None,
) -> Claims:
    """Check ``token`` and return its claims, or raise :class:`LivecoreError`.

    ``room`` (when given) is the room acted on; ``roles`` (when given) the
    roles the action allows. ``now`` is the current Unix time.
    """
    if not token:
        raise _fail(ErrorCode.TOKEN_MISSING, "a token is required (Authorization: Bearer <token>)")
    if len(token) > 2048:
        raise _fail(ErrorCode.TOKEN_MALFORMED, "token is longer than 2048 characters")
    try:
        payload = jwt.decode(
            token,
            secret,
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
    return Claims(
        role=role, room=room, user=user, expires_at=exp, community=community, batch=batch,
        token_id=token_id,
    )  # fmt: skip


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
