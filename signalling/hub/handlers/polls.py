"""Polls: open, vote, close."""

from __future__ import annotations

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.fields import invalid
from livecore.store.bus import Emitted
from livecore.store.polls import VoteResult
from signalling.hub.context import Context


def vote_refusal(result: VoteResult, poll: str, option: int) -> LivecoreError | None:
    """The error a vote's result means (None: counted or unchanged). Pure."""
    if result is VoteResult.NOT_FOUND:
        return LivecoreError(ErrorCode.POLL_NOT_FOUND, f"no poll {poll!r} in this room")
    if result is VoteResult.CLOSED:
        return LivecoreError(ErrorCode.POLL_CLOSED, f"poll {poll!r} is closed")
    if result is VoteResult.BAD_OPTION:
        return invalid("option", f"poll {poll!r} has no option {option}")
    return None


async def vote(ctx: Context, message: wire.Message) -> None:
    poll, option = message.fields["poll"], message.fields["option"]
    result, _ = await ctx.stores.polls.vote(ctx.room_id, poll, ctx.user, option, ctx.node.now())
    refusal = vote_refusal(result, poll, option)
    if refusal is not None:
        raise refusal
    room = ctx.room
    if result is VoteResult.COUNTED:
        ctx.node.moments.signal(ctx.room_id, "vote", ctx.user)
        if room is not None:
            room.dirty_polls.add(poll)
    ctx.ack(message)


async def poll_open(ctx: Context, message: wire.Message) -> None:
    now = ctx.node.now()
    duration = message.fields.get("duration_s")
    closes_at = now + duration if duration else 0
    opened = await ctx.stores.polls.open(
        ctx.room_id, message.fields["question"], message.fields["options"], closes_at, now
    )
    if opened is None:
        raise LivecoreError(ErrorCode.TOO_MANY_POLLS, "this room has its maximum of polls")
    poll, emitted = opened
    ctx.ack(message, emitted, poll=poll)


async def poll_close(ctx: Context, message: wire.Message) -> None:
    poll = message.fields["poll"]
    closed = await ctx.stores.polls.close(ctx.room_id, poll, ctx.node.now())
    if closed is None:
        raise LivecoreError(ErrorCode.POLL_NOT_FOUND, f"no poll {poll!r} in this room")
    if closed is False:
        raise LivecoreError(ErrorCode.POLL_CLOSED, f"poll {poll!r} is already closed")
    assert isinstance(closed, Emitted)
    ctx.ack(message, closed)
