"""Cards the host pins (product, traceability, testimonial); checked by livecore.cards."""

from __future__ import annotations

import msgpack

from livecore import wire
from signalling.hub.context import Context


async def card(ctx: Context, message: wire.Message) -> None:
    body = dict(message.fields)
    event = {"t": "card", "card": body}
    emitted = await ctx.stores.bus.set_state(
        ctx.room_id, f"card:{body['kind']}", msgpack.packb(body), msgpack.packb(event)
    )
    ctx.ack(message, emitted)
