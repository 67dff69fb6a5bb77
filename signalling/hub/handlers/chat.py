"""Comments, likes, moderation and the pinned question."""

from __future__ import annotations

from typing import Any

import msgpack

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import Role
from signalling.hub.context import Context


def comment_event(ctx: Context, text: str, cid: str | None, now_ms: int) -> dict[str, Any]:
    """The ``comment`` event a comment becomes (pure)."""
    event: dict[str, Any] = {"t": "comment", "user": ctx.user, "role": ctx.role.value,
                             "text": text, "ts": now_ms}  # fmt: skip
    if cid:
        event["cid"] = cid
    return event


async def comment(ctx: Context, message: wire.Message) -> None:
    node = ctx.node
    text = node.rules.check(message.fields["text"])
    limit_key = f"{ctx.room_id}:{ctx.user}"
    if ctx.role is not Role.HOST and not node.comment_limits.allow(limit_key):
        wait = node.comment_limits.retry_after(limit_key)
        raise LivecoreError(ErrorCode.RATE_LIMITED, f"one comment at a time; retry in {wait:.1f} s")
    cid = message.fields.get("cid")
    event = comment_event(ctx, text, cid, int(node.clock.time() * 1000))
    result = await ctx.stores.bus.comment(ctx.room_id, ctx.user, msgpack.packb(event), cid)
    if isinstance(result, int):
        raise LivecoreError(ErrorCode.MUTED, f"you are muted for {result} more seconds")
    node.moments.signal(ctx.room_id, "comment", ctx.user)
    ctx.commented = True
    ctx.ack(message, result)


async def like(ctx: Context, message: wire.Message) -> None:
    """Count the taps a person can make (LIKES_PER_SECOND); the rest are dropped
    without an error (a fast tapper is not at fault) and counted nowhere."""
    taps = ctx.node.like_limits.take(f"{ctx.room_id}:{ctx.user}", message.fields["n"])
    room = ctx.room
    if taps and room is not None:
        room.local_likes += taps
    if taps:
        ctx.node.moments.signal(ctx.room_id, "like", ctx.user, taps)
    ctx.ack(message, n=taps)


async def comment_at(ctx: Context, offset: int) -> dict[str, object]:
    """The comment event at ``offset`` in the room's history (not deleted), or refuse."""
    if await ctx.stores.bus.is_deleted(ctx.room_id, offset):
        raise LivecoreError(ErrorCode.COMMENT_NOT_FOUND, f"the comment at {offset} was deleted")
    entries = await ctx.stores.bus.history(ctx.room_id, offset - 1, offset, limit=1)
    if entries:
        event = msgpack.unpackb(entries[0][1], raw=False)
        if event.get("t") == wire.EventType.COMMENT:
            return dict(event)
    raise LivecoreError(ErrorCode.COMMENT_NOT_FOUND, f"no comment at offset {offset}")


async def delete_comment(ctx: Context, message: wire.Message) -> None:
    target = message.fields["offset"]
    await comment_at(ctx, target)
    event = {"t": "comment_deleted", "target": target, "by": ctx.user}
    pinned = (await ctx.stores.bus.state(ctx.room_id)).get("question")
    unset = None
    if isinstance(pinned, dict) and pinned.get("target") == target:
        unset = ("question", msgpack.packb(pinned))  # the abusive text leaves the screen too
    emitted = await ctx.stores.bus.delete(ctx.room_id, target, msgpack.packb(event), unset=unset)
    if emitted is None:
        raise LivecoreError(ErrorCode.COMMENT_NOT_FOUND, f"the comment at {target} was deleted")
    ctx.ack(message, emitted)


async def mute(ctx: Context, message: wire.Message) -> None:
    user, seconds = message.fields["user"], message.fields["duration_s"]
    event = {"t": "user_muted", "user": user, "until": ctx.node.now() + seconds}
    ctx.ack(message, await ctx.stores.bus.mute(ctx.room_id, user, seconds, msgpack.packb(event)))


def question_of(target: int, found: dict[str, object], *, answered: bool) -> dict[str, object]:
    """The pinned question made of the comment ``found`` at ``target`` (pure)."""
    return {"target": target, "user": found.get("user"), "text": found.get("text"),
            "answered": answered}  # fmt: skip


async def _question(ctx: Context, message: wire.Message, *, answered: bool) -> None:
    """Pin the comment at ``offset`` as the room's question, answered or not."""
    target = message.fields["offset"]
    question = question_of(target, await comment_at(ctx, target), answered=answered)
    kind = "question_answered" if answered else "question_pinned"
    event = {"t": kind, **question}
    emitted = await ctx.stores.bus.set_state(
        ctx.room_id, "question", msgpack.packb(question), msgpack.packb(event)
    )
    ctx.ack(message, emitted)


async def pin_question(ctx: Context, message: wire.Message) -> None:
    await _question(ctx, message, answered=False)


async def answer_question(ctx: Context, message: wire.Message) -> None:
    await _question(ctx, message, answered=True)
