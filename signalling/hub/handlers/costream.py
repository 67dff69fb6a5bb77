"""KOC co-streaming (连麦) over the room channel.

A KOC asks (``costream_request``); the host sees ``costream_requested`` and
answers with ``costream_accept`` or ``costream_decline``. An accepted KOC
gets a publish grant (2 minutes to start, checked by ``POST /whip``) and is
on air until the host — or the KOC — sends ``costream_end``: every node then
closes that KOC's WHIP session if it holds it, and the room hears
``costream_ended``. At most ``--costream-max`` KOCs are on air at once.
"""

from __future__ import annotations

import msgpack

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import Role
from signalling.hub.context import Context


async def _event(ctx: Context, kind: str, user: str) -> None:
    await ctx.stores.bus.emit(ctx.room_id, msgpack.packb({"t": kind, "user": user}))


async def request(ctx: Context, message: wire.Message) -> None:
    result = await ctx.stores.media.request(ctx.room_id, ctx.user, ctx.node.now())
    if result == 0:
        raise LivecoreError(ErrorCode.RATE_LIMITED, "too many co-stream requests are waiting")
    if result == 1:  # a repeat of a pending request makes no new event
        await _event(ctx, "costream_requested", ctx.user)
    ctx.ack(message, pending=result == 2)


async def accept(ctx: Context, message: wire.Message) -> None:
    user = message.fields["user"]
    most = ctx.node.settings.costream_max
    result = await ctx.stores.media.accept(ctx.room_id, user, most)
    if result == -1:
        raise LivecoreError(ErrorCode.NO_REQUEST, f"{user!r} has not asked to co-stream")
    if result == -2:
        raise LivecoreError(ErrorCode.COSTREAM_FULL, f"at most {most} co-streamers at once")
    await _event(ctx, "costream_accepted", user)
    ctx.ack(message)


async def decline(ctx: Context, message: wire.Message) -> None:
    user = message.fields["user"]
    if not await ctx.stores.media.decline(ctx.room_id, user):
        raise LivecoreError(ErrorCode.NO_REQUEST, f"{user!r} has not asked to co-stream")
    await _event(ctx, "costream_declined", user)
    ctx.ack(message)


def may_end(role: Role, sender: str, user: str) -> bool:
    """The host ends anyone's co-stream; a KOC only its own. Pure."""
    return role is Role.HOST or user == sender


async def end(ctx: Context, message: wire.Message) -> None:
    """The host ends anyone's co-stream; a KOC may end its own."""
    user = message.fields["user"]
    if not may_end(ctx.role, ctx.user, user):
        raise LivecoreError(ErrorCode.TOKEN_WRONG_ROLE, "only the host ends another's co-stream")
    on_air = await ctx.stores.media.end(ctx.room_id, user)
    await ctx.stores.bus.ephemeral(ctx.room_id, msgpack.packb({"k": "media_end", "user": user}))
    if on_air:
        await _event(ctx, "costream_ended", user)
    ctx.ack(message)
