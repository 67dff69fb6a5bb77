"""Lucky draws (福袋) on the room channel: open, enter, draw."""

from __future__ import annotations

import msgpack

from livecore import luckydraw, wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.luckydraw import DrawStatus, Task
from livecore.store import luckydraw as store
from signalling.hub.context import Context
from signalling.hub.handlers.chat import comment_event


def enter_refusal(code: int, n: int) -> LivecoreError | None:
    """The error an entry's code means (None: entered, now or before). Pure."""
    if code == store.UNKNOWN:
        return LivecoreError(ErrorCode.DRAW_NOT_FOUND, "no such draw in this room")
    if code == store.CLOSED:
        return LivecoreError(ErrorCode.DRAW_CLOSED, "entry to this draw has closed")
    if code == store.NO_GROUPBUY:
        return LivecoreError(ErrorCode.DRAW_TASK, "join a group buy of this room first")
    if code == store.WATCHING:
        return LivecoreError(
            ErrorCode.DRAW_TASK, f"keep watching: {n} s to go", retry_after_s=float(n)
        )
    if code == store.MUTED:
        return LivecoreError(ErrorCode.MUTED, f"you are muted for {max(1, n)} more seconds")
    if code == store.FULL:
        return LivecoreError(
            ErrorCode.DRAW_FULL, f"this draw has its {luckydraw.MAX_ENTRANTS} entrants"
        )
    return None


async def draw_open(ctx: Context, message: wire.Message) -> None:
    """The host opens a draw: its commitment is published with it."""
    now = ctx.node.now()
    spec = luckydraw.parse_spec(message.fields, now=now)
    code, did, emitted = await ctx.stores.draws.open(ctx.room_id, spec, now)
    if code == -1:
        raise LivecoreError(ErrorCode.DRAW_OPEN, f"draw {did!r} has not been drawn yet")
    if code == -2:
        raise LivecoreError(ErrorCode.TOO_MANY_DRAWS, "this room has its maximum of draws")
    ctx.ack(message, emitted, draw=did, closes_at=spec.closes_at)


async def draw_enter(ctx: Context, message: wire.Message) -> None:
    """Enter once. A comment task posts the draw's phrase as the entrant's comment
    in the same atomic step (muted: neither; a refused entry posts nothing)."""
    did = message.fields["draw"]
    draws = ctx.stores.draws
    now = ctx.node.now()
    found = await draws.get(ctx.room_id, did)
    if found is None:
        raise LivecoreError(ErrorCode.DRAW_NOT_FOUND, f"no draw {did!r} in this room")
    if found.status is not DrawStatus.OPEN or found.spec.closes_at <= now:
        raise LivecoreError(ErrorCode.DRAW_CLOSED, "entry to this draw has closed")
    comment = b""
    if found.spec.task is Task.COMMENT:
        comment = msgpack.packb(
            comment_event(ctx, found.spec.phrase, f"draw-{did}", int(ctx.node.clock.time() * 1000))
        )
    code, n = await draws.enter(ctx.room_id, did, ctx.user, now, comment)
    refusal = enter_refusal(code, n)
    if refusal is not None:
        raise refusal
    ctx.ack(message, draw=did, entered=True, entrants=n)


async def draw_roll(ctx: Context, message: wire.Message) -> None:
    """The host draws: entry closes, the seed and the winners are published, once."""
    did = message.fields["draw"]
    code, found, emitted = await ctx.stores.draws.draw(ctx.room_id, did, ctx.node.now())
    if found is None:
        raise LivecoreError(ErrorCode.DRAW_NOT_FOUND, f"no draw {did!r} in this room")
    ctx.ack(message, emitted, **found.public(), again=code == 0)
