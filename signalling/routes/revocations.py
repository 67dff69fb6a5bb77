"""``POST /api/revocations`` (admin): deny a user, a token id, or a role in a room,
and close at once every websocket and media session they hit, on every node."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.fields import invalid
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json

ADMIN = frozenset({tokens.Role.ADMIN})
FIELDS = frozenset({"user", "jti", "room", "role", "ttl_s"})


async def revoke(request: Request) -> Response:
    """Body ``{"user"?, "jti"?, "room"?, "role"?, "ttl_s"?}``: at least one of user,
    jti and room+role (given together); ``ttl_s`` (default and least: the longest
    token lifetime, so no token it covers outlives it) is how long the denial lasts."""
    limit_writes(request)
    await authorize(request, room=None, roles=ADMIN)
    body = await read_json(request)
    if not isinstance(body, dict) or not set(body) <= FIELDS:
        raise LivecoreError(
            ErrorCode.BAD_REQUEST, 'body must be {"user"?, "jti"?, "room"?, "role"?, "ttl_s"?}'
        )
    user, token_id = body.get("user"), body.get("jti")
    room, role = body.get("room"), body.get("role")
    longest = tokens.longest_lifetime()
    ttl = body.get("ttl_s", longest)
    if user is None and token_id is None and room is None and role is None:
        raise invalid("user", "give a user, a jti, or a room and a role to revoke")
    if user is not None and (not isinstance(user, str) or not tokens.valid_id(user)):
        raise invalid("user", "1-64 characters of A-Z a-z 0-9 _ . : -")
    if token_id is not None and (not isinstance(token_id, str) or not 1 <= len(token_id) <= 64):
        raise invalid("jti", "a string of 1-64 characters")
    room_role = _room_role(room, role)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not longest <= ttl <= 2 * longest:
        raise invalid("ttl_s", f"must be between {longest} and {2 * longest}")
    node = ctx(request)
    await node.stores.revocations.revoke(
        user=user, token_id=token_id, ttl_s=ttl, room_role=room_role, now=int(node.clock.time())
    )
    answer = {"user": user, "jti": token_id, "room": room, "role": role, "ttl_s": ttl}
    return JSONResponse(answer, status_code=201)


def _room_role(room: object, role: object) -> tuple[str, tokens.Role] | None:
    """``(room, role)`` of a role's revocation in a room, None when neither is given."""
    if room is None and role is None:
        return None
    if not isinstance(room, str) or not tokens.valid_id(room):
        raise invalid("room", "a room id (1-64 of A-Z a-z 0-9 _ . : -), given with a role")
    if not isinstance(role, str) or role not in {r.value for r in tokens.Role}:
        roles = ", ".join(r.value for r in tokens.Role)
        raise invalid("role", f"one of {roles}, given with a room")
    return room, tokens.Role(role)
