"""``POST /api/revocations`` (admin): deny a user or a token id until it expires."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.fields import invalid
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json

ADMIN = frozenset({tokens.Role.ADMIN})


async def revoke(request: Request) -> Response:
    """Body ``{"user"?, "jti"?, "ttl_s"?}``: at least one of user and jti; ``ttl_s``
    (default and most: the longest token lifetime) is how long the denial lasts."""
    limit_writes(request)
    await authorize(request, room=None, roles=ADMIN)
    body = await read_json(request)
    if not isinstance(body, dict) or not set(body) <= {"user", "jti", "ttl_s"}:
        raise LivecoreError(ErrorCode.BAD_REQUEST, 'body must be {"user"?, "jti"?, "ttl_s"?}')
    user, token_id = body.get("user"), body.get("jti")
    ttl = body.get("ttl_s", tokens.MAX_TTL_S)
    if user is None and token_id is None:
        raise invalid("user", "give a user or a jti to revoke")
    if user is not None and (not isinstance(user, str) or not tokens.valid_id(user)):
        raise invalid("user", "1-64 characters of A-Z a-z 0-9 _ . : -")
    if token_id is not None and (not isinstance(token_id, str) or not 1 <= len(token_id) <= 64):
        raise invalid("jti", "a string of 1-64 characters")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= tokens.MAX_TTL_S:
        raise invalid("ttl_s", f"must be between 1 and {tokens.MAX_TTL_S}")
    await ctx(request).stores.revocations.revoke(user=user, token_id=token_id, ttl_s=ttl)
    return JSONResponse({"user": user, "jti": token_id, "ttl_s": ttl}, status_code=201)
