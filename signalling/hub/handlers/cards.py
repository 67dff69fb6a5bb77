"""Cards the host pins (product, traceability, testimonial); checked by livecore.cards."""

from __future__ import annotations

import msgpack

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from signalling.hub.context import Context


async def card(ctx: Context, message: wire.Message) -> None:
    body = dict(message.fields)
    event = {"t": "card", "card": body}
    emitted = await ctx.stores.bus.set_state(
        ctx.room_id, f"card:{body['kind']}", msgpack.packb(body), msgpack.packb(event)
    )
    if body["kind"] == "product":
        await ctx.node.moments.product_pinned(ctx.room_id, str(body.get("name") or "") or None)
    ctx.ack(message, emitted)


async def mark(ctx: Context, message: wire.Message) -> None:
    """The host marks a moment for a highlight clip (the stream must be recorded)."""
    at = await ctx.node.moments.mark(ctx.room_id)
    if at is None:
        raise LivecoreError(
            ErrorCode.NOT_RECORDING, "this stream is not being recorded: go live first"
        )
    ctx.ack(message, at=round(at, 3))
