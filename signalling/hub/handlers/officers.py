"""Share officers (分享官) and commission levels on the room channel."""

from __future__ import annotations

from livecore import groupbuy, wire
from livecore.errors import ErrorCode, LivecoreError
from signalling.hub.context import Context
from signalling.hub.groupview import officer_links


def _links(ctx: Context, code: str) -> dict[str, str]:
    return officer_links(ctx.node.settings.base_url, ctx.room_id, code)


async def officer_apply(ctx: Context, message: wire.Message) -> None:
    status, code = await ctx.stores.officers.apply(ctx.room_id, ctx.user, ctx.node.now())
    if status == -1:
        raise LivecoreError(ErrorCode.NOT_A_BUYER, "join a group buy first; buyers may apply")
    if status == 1:
        ctx.node.moments.signal(ctx.room_id, "signup", ctx.user)
    ctx.ack(message, code=code, links=_links(ctx, code), new=status == 1)


async def officer_me(ctx: Context, message: wire.Message) -> None:
    officer = await ctx.stores.officers.get(ctx.room_id, ctx.user)
    if officer is None:
        raise LivecoreError(ErrorCode.NOT_A_BUYER, "you are not a share officer here; apply first")
    ctx.ack(message, **officer.public(_links(ctx, officer.code)))


async def commission_set(ctx: Context, message: wire.Message) -> None:
    level1, level2 = groupbuy.check_commission(
        message.fields["level1_bp"], message.fields["level2_bp"]
    )
    await ctx.stores.groupbuys.set_commission(ctx.room_id, level1, level2)
    ctx.ack(message, level1_bp=level1, level2_bp=level2)


def attribution_refusal(status: int, code: str) -> LivecoreError | None:
    """The error an attribution script's status means (None: attributed or kept). Pure."""
    if status == -1:
        return LivecoreError(ErrorCode.UNKNOWN_REFERRER, f"no share officer with code {code}")
    if status == -2:
        return LivecoreError(ErrorCode.SELF_REFERRAL, "that is your own referral code")
    return None


async def attribute(ctx: Context, code: str) -> str | LivecoreError:
    """Attribute the viewer to the officer of ``code``: the officer, or the refusal
    (sent by the caller after the snapshot, so the snapshot stays the first answer)."""
    status, officer = await ctx.stores.officers.attribute(
        ctx.room_id, code, ctx.user, ctx.node.now()
    )
    return attribution_refusal(status, code) or officer
