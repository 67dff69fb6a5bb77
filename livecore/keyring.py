"""Token signing keys: which key (``kid``) may sign which tokens (pure).

Two kinds of key, told apart by their scope:

- **node** keys sign every role: the node's own credentials (``node`` pulls,
  ``device`` ingest tokens, guests' viewer tokens) and the operator's
  (``admin``, ``host``). The legacy ``<data-dir>/secret`` (or
  ``$LIVECORE_SECRET``) is the node key ``node``; tokens without a ``kid``
  header are checked against it.
- **shop** keys are what a shop's backend holds: they sign only ``viewer``,
  ``officer``, ``koc`` and ``pickup`` tokens, and only for the shop's rooms:
  rooms whose id starts with the key's ``rooms`` prefix (the operator names a shop's rooms
  ``<prefix>...``, e.g. ``fresh-`` → ``fresh-morning-0612``). A token outside
  that scope is refused ``token_key_scope``, whatever its signature.

Rotation: every node loads every key file; a node signs its own tokens with
the node key marked ``"sign": true`` (else ``node``). To rotate, add the new
key file everywhere, mark it signing, and delete the old file once the longest
lifetime of the tokens it signed has passed: until then the old ``kid``
still verifies, so nobody connected is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

#: The kid of the legacy secret (``<data-dir>/secret``), and of kid-less tokens.
DEFAULT_KID = "node"
#: A key is at least this many bytes.
MIN_SECRET = 32
_KID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeyScope(StrEnum):
    NODE = "node"
    SHOP = "shop"


#: Roles a shop key may sign (its customers and its co-streamers).
SHOP_ROLES = frozenset({"viewer", "officer", "koc", "pickup"})


class KeyFileError(ValueError):
    """A key file is unreadable, malformed or too weak."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One HMAC key (HS256) and what it may sign."""

    kid: str
    secret: bytes = field(repr=False)
    scope: KeyScope = KeyScope.NODE
    #: Shop keys: the prefix of the room ids its tokens may name.
    rooms: str = ""

    def may_sign(self, role: str, room: str) -> bool:
        """Whether a token of ``role`` for ``room`` may carry this key's signature."""
        if self.scope is KeyScope.NODE:
            return True
        return role in SHOP_ROLES and room != "*" and room.startswith(self.rooms)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Every key a node verifies with, and the node key it signs with."""

    keys: tuple[SigningKey, ...]
    signing_kid: str = DEFAULT_KID

    def __post_init__(self) -> None:
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise KeyFileError("two keys have the same kid")
        signer = self.get(self.signing_kid)
        if signer is None or signer.scope is not KeyScope.NODE:
            raise KeyFileError(f"the signing key {self.signing_kid!r} is not a node key")

    @classmethod
    def single(cls, secret: bytes) -> KeyRing:
        """A ring of the one legacy node key."""
        return cls((SigningKey(DEFAULT_KID, secret),))

    def get(self, kid: str | None) -> SigningKey | None:
        """The key of ``kid`` (None: the default node key), or None when unknown."""
        wanted = DEFAULT_KID if kid is None else kid
        return next((k for k in self.keys if k.kid == wanted), None)

    @property
    def signing(self) -> SigningKey:
        key = self.get(self.signing_kid)
        assert key is not None  # checked when the ring was made
        return key


def parse_key(text: str, name: str) -> tuple[SigningKey, bool]:
    """A key file's key and whether it is marked signing. The file is JSON:
    ``{"kid", "scope": "node"|"shop", "rooms"? (shop: room id prefix, 1-32),
    "secret" (at least 32 characters), "sign"? (node keys)}``."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"{name}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or not set(raw) <= {"kid", "scope", "rooms", "secret", "sign"}:
        raise KeyFileError(f'{name}: must be {{"kid", "scope", "rooms"?, "secret", "sign"?}}')
    kid, scope, rooms = raw.get("kid"), raw.get("scope"), raw.get("rooms", "")
    secret, sign = raw.get("secret"), raw.get("sign", False)
    if not isinstance(kid, str) or not _KID_RE.match(kid):
        raise KeyFileError(f"{name}: kid must be 1-64 of A-Z a-z 0-9 _ . -")
    if scope not in {s.value for s in KeyScope}:
        raise KeyFileError(f"{name}: scope must be node or shop")
    if not isinstance(secret, str) or len(secret.encode()) < MIN_SECRET:
        raise KeyFileError(f"{name}: secret must be a string of at least {MIN_SECRET} bytes")
    if not isinstance(sign, bool) or (sign and scope != KeyScope.NODE.value):
        raise KeyFileError(f"{name}: sign is true only on a node key")
    if scope == KeyScope.SHOP.value and (
        not isinstance(rooms, str) or not 1 <= len(rooms) <= 32 or not _KID_RE.match(rooms)
    ):
        raise KeyFileError(f"{name}: a shop key needs rooms, a room id prefix of 1-32")
    if scope == KeyScope.NODE.value and rooms != "":
        raise KeyFileError(f"{name}: a node key has no rooms")
    return SigningKey(kid, secret.encode(), KeyScope(scope), str(rooms)), sign


def ring_of(legacy: bytes, files: Iterable[Path]) -> KeyRing:
    """The ring of the legacy secret (kid ``node``) and the key files ``files``."""
    keys = [SigningKey(DEFAULT_KID, legacy)]
    signing = DEFAULT_KID
    for path in sorted(files):
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeyFileError(f"{path.name}: cannot read ({exc.strerror})") from None
        key, sign = parse_key(text, path.name)
        if sign:
            if signing != DEFAULT_KID:
                raise KeyFileError(f"{path.name}: another key file is already marked sign")
            signing = key.kid
        keys.append(key)
    return KeyRing(tuple(keys), signing)
