"""The session's own credentials: an in-band ``token`` message refreshes them."""

from __future__ import annotations

from livecore import tokens, wire
from livecore.errors import ErrorCode, LivecoreError
from signalling.hub.context import Context


async def verified(ctx: Context, token: str) -> tokens.Claims:
    """Claims of ``token`` for this room, not revoked (raises LivecoreError)."""
    node = ctx.node
    claims = tokens.verify(node.secret, token, now=node.clock.time(), room=ctx.room_id)
    if await ctx.stores.revocations.is_revoked(claims):
        raise LivecoreError(ErrorCode.TOKEN_REVOKED, "this token (or its user) was revoked")
    return claims


async def refresh(ctx: Context, message: wire.Message) -> None:
    """Replace the session's token with a newer one of the same user and role."""
    claims = await verified(ctx, message.fields["token"])
    if claims.user != ctx.user or claims.role is not ctx.role:
        raise LivecoreError(
            ErrorCode.TOKEN_WRONG_ROLE, "a refreshed token must name the same user and role"
        )
    ctx.claims = claims
    ctx.peer.claims = claims
    ctx.peer.arm_expiry(claims.expires_at - ctx.node.clock.time())
    ctx.ack(message, exp=claims.expires_at)
