"""Coupons on the room channel: the host creates them, buyers claim them while live."""

from __future__ import annotations

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
    """Whether this session did a watch or comment task (group buys are checked by the
    store). Pure on the context."""
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


async def coupon_claim(ctx: Context, message: wire.Message) -> None:
    cid = message.fields["cp"]
    stores, now = ctx.stores, ctx.node.now()
    task = await stores.coupons.task_of(ctx.room_id, cid)
    if task is None:
        raise LivecoreError(ErrorCode.COUPON_NOT_FOUND, "no such coupon in this room")
    done = session_task_done(ctx, task[0], task[1], now)
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
