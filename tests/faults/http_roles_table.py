"""The HTTP role table of docs/protocol.md, its credential kinds, and what each cell
must answer (the rules of the table's legend, as code)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from itertools import count

import jwt

from livecore.tokens import ANY_ROOM, Role
from tests.helpers import ROOT, TEST_SECRET

PUBLIC = "—"
SIGNED = "signed"
ROLE_NAMES = ("host", "koc", "viewer", "officer", "admin", "device", "node", "pickup")
#: Every kind of credential a request may carry.
KINDS = (
    "none", *ROLE_NAMES, "admin*", "expired", "other-scope", "star", "revoked", "future-nbf",
    "wrong-secret", "signed", "over-long", "unknown-kid", "shop-key", "shop-admin",
)  # fmt: skip
#: The shop key the matrix's node holds (``<data-dir>/keys/shop-m.json``): it may sign
#: viewer, officer and koc tokens for rooms ``shopm-…`` only, none of the matrix's.
SHOP_KEY = {"kid": "shop-m", "scope": "shop", "rooms": "shopm-", "secret": "m" * 40}
#: The user whose every token was revoked before the matrix runs.
REVOKED_USER = "revoked-u"
#: The host who registered the matrix's batches (the ``(owner)`` of the table).
OWNER = "brand1"


@dataclass(frozen=True)
class Row:
    """One endpoint of the table: who may call it."""

    method: str
    path: str
    roles: frozenset[Role]
    public: bool = False
    signed: bool = False
    owner: bool = False  # (owner): a host only for its own batches
    batch_device: bool = False  # (batch): a device token of that batch

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def room_scoped(self) -> bool:
        return "{room}" in self.path or (self.path == "/api/rooms" and self.method == "POST")


def documented_rows() -> list[Row]:
    """Every row of 'Who may call each endpoint' in docs/protocol.md."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split("### Who may call each endpoint", 1)[1].split("\n### ", 1)[0]
    rows = []
    for method, path, who in re.findall(r"^\| ([A-Z]+) \| `([^`]+)` \| ([^|]+) \|$", section,
                                        flags=re.M):  # fmt: skip
        roles = frozenset(Role(n) for n in re.findall(rf"\b({'|'.join(ROLE_NAMES)})\b",
                                                      re.sub(r"\(.*?\)", "", who)))  # fmt: skip
        rows.append(Row(method, path, roles, public=who.strip().startswith(PUBLIC),
                        signed=who.strip() == SIGNED, owner="(owner)" in who,
                        batch_device="(batch)" in who))  # fmt: skip
    return rows


_jti = count()


def forge(role: str, user: str, room: str, *, secret: str = TEST_SECRET, exp: int | None = None,
          claims: dict[str, object] | None = None, kid: str | None = None) -> str:  # fmt: skip
    """A token with exactly these claims (a fresh ``jti`` each; unless ``exp`` is given,
    ``iat`` now and ``exp`` 5 minutes on, within every role's lifetime)."""
    now = int(time.time())
    times = {"iat": now, "exp": now + 300} if exp is None else {"exp": exp}
    payload = {"iss": "livecore", "sub": user, "role": role, "room": room, **times,
               "jti": f"m{next(_jti)}", **(claims or {})}  # fmt: skip
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers)


def acting_role(row: Row) -> str:
    """The role a bad credential is made of: one the row allows (a non-admin first)."""
    for name in ("host", "device", "viewer", "koc", "officer", "node", "pickup", "admin"):
        if Role(name) in row.roles:
            return name
    return "host"


def credential(row: Row, kind: str, scope: str, user: str) -> str | None:
    """The Bearer token of ``kind`` for ``row`` acting on ``scope`` (a room or batch);
    None for no header. Raises LookupError when the kind does not apply to the row."""
    role = acting_role(row)
    room = scope if row.room_scoped else ANY_ROOM if role == "admin" else "r1"
    if row.batch_device and role == "device":
        room = scope
    bat: dict[str, object] = {"bat": scope} if row.batch_device else {}
    if kind == "none" or kind == "signed":
        return None
    if kind == "admin*":
        return forge("admin", user, ANY_ROOM)
    if kind in ROLE_NAMES:
        if kind == "device" and row.batch_device:
            return forge("device", user, scope, claims={"bat": scope})
        if kind == "host" and row.owner:
            user = OWNER
        return forge(kind, user, scope if row.room_scoped else "r1")
    acting = OWNER if row.owner and role == "host" else user
    claims = bat if role == "device" else {}
    if kind == "expired":
        return forge(role, acting, room, exp=1_000_000_000, claims=claims)
    if kind == "future-nbf":
        return forge(role, acting, room, claims={"nbf": 2**31 - 10, **claims})
    if kind == "wrong-secret":
        return forge(role, acting, room, secret="x" * 40, claims=claims)
    if kind == "revoked":
        return forge(role, REVOKED_USER, room, claims=claims)
    if kind == "over-long":  # far longer than any role's lifetime: would outlive a revocation
        now = int(time.time())
        long_lived = {"iat": now - 60, "exp": now + 400 * 86400}
        return forge(role, acting, room, claims={**long_lived, **claims})
    if kind == "unknown-kid":
        return forge(role, acting, room, kid="retired-key", claims=claims)
    if kind == "shop-key":
        return forge(role, acting, room, secret=SHOP_KEY["secret"], kid="shop-m", claims=claims)
    if kind == "shop-admin":
        return forge("admin", user, ANY_ROOM, secret=SHOP_KEY["secret"], kid="shop-m")
    if kind == "star":
        return forge(role if role != "admin" else "host", user, ANY_ROOM)
    if kind == "other-scope":
        if row.batch_device and role == "device":
            return forge("device", user, "mx-other-batch", claims={"bat": "mx-other-batch"})
        if row.owner:
            return forge("host", "another-brand", "r1")
        if not row.room_scoped:
            raise LookupError("no other scope on a path without a room")
        return forge(role, user, "r-other")
    raise AssertionError(kind)


def expected(row: Row, kind: str, ok: tuple[int, str | None]) -> tuple[int, str | None]:
    """What the legend of the table says ``kind`` gets on ``row`` (``ok``: an accepted one)."""
    if row.public:
        return ok
    if row.signed:
        return ok if kind == "signed" else (401, "token_expired")  # no X-Livecore-Timestamp
    if kind in ("none", "signed"):
        return 401, "token_missing"
    bad = {
        "expired": (401, "token_expired"),
        "future-nbf": (401, "token_not_yet_valid"),
        "wrong-secret": (401, "token_bad_signature"),
        "revoked": (401, "token_revoked"),
        "over-long": (401, "token_lifetime"),
        "unknown-kid": (401, "token_unknown_key"),
        "shop-key": (403, "token_key_scope"),
        "shop-admin": (403, "token_key_scope"),
    }
    if kind in bad:
        return bad[kind]
    if kind == "other-scope":
        if row.batch_device and acting_role(row) == "device":
            return 403, "token_wrong_batch"
        return (403, "not_batch_owner") if row.owner else (403, "token_wrong_room")
    if kind == "star":
        if row.room_scoped or acting_role(row) != "admin":
            return 403, "token_wrong_room"
        return 403, "token_wrong_role"
    role = Role("admin" if kind == "admin*" else kind)
    if role not in row.roles:
        return 403, "token_wrong_role"
    if kind == "admin" and not row.room_scoped:
        return 403, "token_wrong_room"  # an admin of one room is no admin of the node
    return ok
