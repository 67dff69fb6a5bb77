"""Coupons on the room channel: the host creates them, buyers claim them while live."""

from __future__ import annotations

from typing import Any

from livecore import coupons, wire
from livecore.coupons import Task
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.coupons import ClaimResult
from signalling.hub.context import Context

_CLAIM_REFUSALS = {
    -1: (ErrorCode.ROOM_NOT_LIVE, "coupons are claimed only while the room is live"),
    -2: (ErrorCode.COUPON_NOT_FOUND, "no such coupon in this room"),
    -3: (ErrorCode.COUPON_TASK, "do the coupon's task first"),
    -4: (ErrorCode.COUPON_GONE, "all of this coupon have been claimed"),
}


def claim_refusal(result: ClaimResult) -> LivecoreError | None:
    """The error a claim's refusal code means (None: claimed). Pure."""
    if result.code >= 0:
        return None
    if result.code == -5:
        return LivecoreError(ErrorCode.COUPON_LIMIT, f"at most {result.arg} per person")
    error, why = _CLAIM_REFUSALS[result.code]
    return LivecoreError(error, why)


def session_task_done(ctx: Context, task: str, watch_min: int, now: int) -> bool:
    """Whether this buyer did a watch or comment task (group buys are checked by the
    store): ``ctx.since`` / ``ctx.commented`` are the connection's, or an earlier
    connection's once read back. Pure on the context."""
    if task == Task.WATCH:
        return now - ctx.since >= watch_min * 60
    if task == Task.COMMENT:
        return ctx.commented
    return True


async def coupon_create(ctx: Context, message: wire.Message) -> None:
    spec = coupons.parse_spec(dict(message.fields))
    cid = await ctx.stores.coupons.create(ctx.room_id, spec)
    if cid is None:
        raise LivecoreError(
            ErrorCode.TOO_MANY_COUPONS, f"a room holds at most {coupons.MAX_COUPONS} coupons"
        )
    ctx.node.orders.note(ctx.room_id)
    ctx.ack(message, cp=cid, **spec.public())


def keeps_task_facts(coupons: list[dict[str, Any]]) -> bool:
    """Whether a room's coupons ask for a watch or comment task (then a leaving
    connection's facts are kept for the buyer's next one). Pure."""
    return any(c.get("task") in (Task.WATCH, Task.COMMENT) for c in coupons)


async def remember_session(ctx: Context) -> None:
    """Keep a closing connection's task facts (arrival, commented) in the store."""
    await ctx.stores.coupons.remember(ctx.room_id, ctx.user, ctx.since, ctx.commented)


async def coupon_claim(ctx: Context, message: wire.Message) -> None:
    cid = message.fields["cp"]
    stores, now = ctx.stores, ctx.node.now()
    task = await stores.coupons.task_of(ctx.room_id, cid)
    if task is None:
        raise LivecoreError(ErrorCode.COUPON_NOT_FOUND, "no such coupon in this room")
    done = session_task_done(ctx, task[0], task[1], now)
    if not done:  # an earlier connection of this buyer may have done it (a reconnect)
        since, commented = await stores.coupons.task_facts(ctx.room_id, ctx.user)
        if since is not None and since < ctx.since:
            ctx.since = since
        ctx.commented = ctx.commented or commented
        done = session_task_done(ctx, task[0], task[1], now)
        if not done:
            await stores.coupons.remember(ctx.room_id, ctx.user, ctx.since, ctx.commented)
    result = await stores.coupons.claim(
        ctx.room_id, cid, ctx.user, now, done, message.fields.get("key") or ""
    )
    refusal = claim_refusal(result)
    if refusal is not None:
        raise refusal
    assert result.state is not None
    public = result.state.public()
    room = ctx.room
    if result.code == 1 and room is not None and room.set_coupon(cid, public):
        room.local_commerce[cid] = public
        ctx.node.orders.note(ctx.room_id)
    ctx.ack(message, cp=cid, mine=result.mine, **public)
