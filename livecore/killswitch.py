"""What a revocation or a room's end stops on every node (pure).

A :class:`Kill` is published once on the nodes' control channel
(:mod:`livecore.store.control`); every node closes what it matches: the
websockets whose current token it hits (close code ``4005`` revoked), the
WHIP/WHEP sessions opened with such a token, and — for a room's end — every
media session of the room, whoever holds it (the recording ends with the
host's stream).

Matching rules:

- ``token_id``: the token with that ``jti``;
- ``user``: every token naming that user, in any room;
- ``room`` + ``role``: every token of that role for that room issued at or
  before ``issued_before`` (a token minted later, e.g. the host's new one,
  is not hit);
- ``room`` + ``ended``: every media session of the room (websockets stay: they
  receive ``room_ended`` and the room's last state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from livecore.tokens import Claims, Role, valid_id

#: The largest encoded notice a node reads (a notice is a few ids).
MAX_NOTICE = 1024


@dataclass(frozen=True, slots=True)
class Kill:
    """One revocation or room end, as every node receives it."""

    user: str | None = None
    token_id: str | None = None
    room: str | None = None
    role: Role | None = None
    #: Tokens of ``role`` in ``room`` issued at or before this Unix time are hit.
    issued_before: int | None = None
    #: The room ended: every media session of ``room`` closes.
    ended: bool = False

    def hits(self, claims: Claims) -> bool:
        """Whether a session holding ``claims`` must close."""
        if self.token_id is not None and claims.token_id == self.token_id:
            return True
        if self.user is not None and claims.user == self.user:
            return True
        if self.role is not None and self.room is not None:
            issued = claims.issued_at if claims.issued_at is not None else 0
            before = self.issued_before if self.issued_before is not None else issued
            return claims.role is self.role and claims.room == self.room and issued <= before
        return False

    def hits_media(self, room: str, claims: Claims) -> bool:
        """Whether a media session in ``room`` opened with ``claims`` must close."""
        return (self.ended and self.room == room) or self.hits(claims)

    def encode(self) -> bytes:
        fields: dict[str, Any] = {
            "user": self.user, "jti": self.token_id, "room": self.room,
            "role": self.role.value if self.role is not None else None,
            "before": self.issued_before, "ended": self.ended,
        }  # fmt: skip
        return bytes(msgpack.packb({k: v for k, v in fields.items() if v not in (None, False)}))


def decode(data: bytes) -> Kill | None:
    """The notice in ``data``, or None when it is not one (ignored, never raised)."""
    if len(data) > MAX_NOTICE:
        return None
    try:
        raw = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return None
    if not isinstance(raw, dict):
        return None
    ids = {name: raw.get(name) for name in ("user", "jti", "room")}
    if any(v is not None and not isinstance(v, str) for v in ids.values()):
        return None
    if not all(v is None or valid_id(v) for v in (ids["user"], ids["room"])):
        return None
    if ids["jti"] is not None and not 1 <= len(ids["jti"]) <= 64:
        return None
    role, before, ended = raw.get("role"), raw.get("before"), raw.get("ended", False)
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        return None
    try:
        parsed_role = Role(role) if role is not None else None
    except ValueError:
        return None
    return Kill(user=ids["user"], token_id=ids["jti"], room=ids["room"], role=parsed_role,
                issued_before=before, ended=ended is True)  # fmt: skip
