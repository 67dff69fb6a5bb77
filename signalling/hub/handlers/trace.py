"""Traceability batches pinned in the live room (一键溯源)."""

from __future__ import annotations

import msgpack

from livecore import wire
from signalling.hub.context import Context


async def batch_pin(ctx: Context, message: wire.Message) -> None:
    """The batch's card becomes the room's ``trace`` card; its readings come live."""
    card = await ctx.node.batches.pin(message.fields["batch"], ctx.room_id)
    event = {"t": "card", "card": card}
    emitted = await ctx.stores.bus.set_state(
        ctx.room_id, "card:trace", msgpack.packb(card), msgpack.packb(event)
    )
    ctx.ack(message, emitted)


async def batch_unpin(ctx: Context, message: wire.Message) -> None:
    """The batch's live readings stop going to the room."""
    await ctx.node.batches.unpin(message.fields["batch"], ctx.room_id)
    ctx.ack(message)
