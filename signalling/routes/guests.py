"""Guest entry: a shared link opens the room with no hand-made token.

``POST /api/rooms/{room}/guest`` mints a short-lived viewer token for a guest
id. The id is the device's: the page keeps ``{guest, key}`` in localStorage
and sends it back on every visit, so a reload, a reconnect or a renewal keeps
the same user (the buyer's joins and the officer's attribution stay theirs).
The key is an HMAC of the id with the node secret, so the server keeps no
per-guest state and nobody can mint a token for somebody else's guest id.

Bounded: guest ids have a fixed shape (``g-`` + 12 base32 characters), mints
are rate-limited per device and (against floods) per client address,
nicknames live in one capped hash per room that expires with the room's
activity. Operators turn guest entry off per room (``PUT
/api/rooms/{room}/settings {"guests": false}``); a shop backend with its own
login mints tokens with the secret instead (docs/protocol.md, "Guest entry").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store import keys
from livecore.store.replies import as_str
from signalling.node.http_boundary import (
    authorize,
    client_key,
    ctx,
    limit_writes,
    read_json,
    refuse,
    take,
)

#: Lifetime of a guest token; the page renews it well before (same guest id).
GUEST_TTL_S = 2 * 3600
NICK_MAX = 20
#: Nicknames one room keeps at most; past that new ones are not stored (ids still work).
NAMES_MAX = 20_000
#: Nicknames are forgotten this long after the room's last nickname change.
NAMES_TTL_S = 14 * 24 * 3600
#: Ids one names lookup may ask for.
LOOKUP_MAX = 50
GUEST_RE = tokens.GUEST_ID
SETTERS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})

# Store the nickname unless the hash is full (an existing guest may always rename).
_SET_NAME = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
   and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


def guest_key(secret: bytes, guest: str) -> str:
    """The device's proof that ``guest`` was issued to it."""
    mac = hmac.new(secret, b"livecore-guest:" + guest.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")


def new_guest_id() -> str:
    return "g-" + base64.b32encode(secrets.token_bytes(8)).decode().lower()[:12]


def clean_nickname(value: Any) -> str | None:
    """A nickname of 1-20 printable characters, or None when absent/blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "name: must be a string")
    name = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C").strip()
    if not name:
        return None
    if len(name) > NICK_MAX:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"name: at most {NICK_MAX} characters")
    return name


def _room_id(request: Request) -> str:
    room: str = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


async def guests_allowed(request: Request, room: str) -> bool:
    """Whether ``room`` admits guests (raises ``room_not_found``)."""
    node = ctx(request)
    meta = keys.room(room, "meta")
    exists, flag = await node.redis.exists(meta), await node.redis.hget(meta, "guests")
    if not exists:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    return flag is None or as_str(flag) != "0"


async def mint_guest(request: Request) -> Response:
    """``POST /api/rooms/{room}/guest`` {guest?, key?, name?}:
    {token, user, key, name, expires_at}."""
    room = _room_id(request)
    node = ctx(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    unknown = set(body) - {"guest", "key", "name"}
    if unknown:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{sorted(unknown)[0]}: unknown field")
    name = clean_nickname(body.get("name"))
    guest, key = body.get("guest"), body.get("key")
    device = (
        guest
        if isinstance(guest, str)
        and isinstance(key, str)
        and GUEST_RE.match(guest) is not None
        and hmac.compare_digest(guest_key(node.secret, guest), key)
        else None
    )
    # Per device (its id proven by its key) and per address; a new device id is
    # limited per address (the caller bucket keyed by it), sized for a compound
    # behind carrier-grade NAT but not for one phone minting itself many ids.
    address = client_key(request)
    if device is None and not node.guest_new.ready(address):
        refuse(request, "guest_new_address", node.guest_new.retry_after(address))
    take(request, node.guest_mints, "guest_mints", caller=device, address=address)
    if device is None:
        node.guest_new.allow(address)
    if not await guests_allowed(request, room):
        raise LivecoreError(
            ErrorCode.TOKEN_MISSING, "this room admits signed-in viewers only: open the shop's link"
        )
    user = device if device is not None else new_guest_id()
    now = node.clock.time()
    token = tokens.mint(
        node.ring, role=tokens.Role.VIEWER, room=room, user=user, ttl_s=GUEST_TTL_S, now=now
    )
    names = keys.room(room, "names")
    if name is not None:
        await node.redis.eval(_SET_NAME, 1, names, user, name, NAMES_MAX, NAMES_TTL_S)
    stored = await node.redis.hget(names, user)
    return JSONResponse(
        {
            "token": token,
            "user": user,
            "key": guest_key(node.secret, user),
            "name": as_str(stored) if stored is not None else None,
            "expires_at": int(now) + GUEST_TTL_S,
        }
    )


async def names(request: Request) -> Response:
    """``GET /api/rooms/{room}/names?u=id,id`` → {"names": {id: nickname}} (known ones only)."""
    room = _room_id(request)
    wanted = [u for u in request.query_params.get("u", "").split(",") if u]
    if len(wanted) > LOOKUP_MAX or not all(tokens.valid_id(u) for u in wanted):
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"u: up to {LOOKUP_MAX} user ids")
    found: dict[str, str] = {}
    if wanted:
        values = await ctx(request).redis.hmget(keys.room(room, "names"), wanted)
        found = {u: as_str(v) for u, v in zip(wanted, values, strict=True) if v is not None}
    return JSONResponse({"names": found}, headers={"Cache-Control": "max-age=5"})


async def get_settings(request: Request) -> Response:
    """``GET /api/rooms/{room}/settings`` → {"guests": bool} (public)."""
    room = _room_id(request)
    return JSONResponse({"guests": await guests_allowed(request, room)})


async def put_settings(request: Request) -> Response:
    """``PUT /api/rooms/{room}/settings`` {"guests": bool}: the room's host or an admin."""
    room = _room_id(request)
    limit_writes(request)
    await authorize(request, room=room, roles=SETTERS)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    unknown = set(body) - {"guests"}
    if unknown:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{sorted(unknown)[0]}: unknown field")
    allowed = body.get("guests")
    if not isinstance(allowed, bool):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "guests: required, true or false")
    await guests_allowed(request, room)  # room_not_found before writing
    await ctx(request).redis.hset(keys.room(room, "meta"), "guests", "1" if allowed else "0")
    return JSONResponse({"guests": allowed})


def routes() -> list[Route]:
    return [
        Route("/api/rooms/{room}/guest", mint_guest, methods=["POST"]),
        Route("/api/rooms/{room}/names", names, methods=["GET"]),
        Route("/api/rooms/{room}/settings", get_settings, methods=["GET"]),
        Route("/api/rooms/{room}/settings", put_settings, methods=["PUT"]),
    ]
