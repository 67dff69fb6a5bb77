"""讲解: the host explains the pinned product; the segment becomes that product's clip.

``explain {product}`` starts an explanation of the room's pinned product card
(refused ``not_pinned`` for any other name: the clip is the product's, shown
on its card); ``explain {}`` ends it. A new 讲解, a card of another product
and the stream's end also end it. The recording node cuts the segment
(``HighlightKind.EXPLAIN``) whichever node the host is connected to, because
the tap goes to the room's control stream in Valkey.
"""

from __future__ import annotations

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from signalling.hub.context import Context


async def explain(ctx: Context, message: wire.Message) -> None:
    product = message.fields.get("product")
    if product is not None:
        card = (await ctx.stores.bus.state(ctx.room_id)).get("card:product")
        pinned = card.get("name") if isinstance(card, dict) else None
        if pinned != product:
            raise LivecoreError(
                ErrorCode.NOT_PINNED, f"pin the product card of {product!r} first, then explain it"
            )
    at = await ctx.node.moments.explain(ctx.room_id, product)
    if at is None:
        raise LivecoreError(
            ErrorCode.NOT_RECORDING, "this stream is not being recorded: go live first"
        )
    ctx.ack(message, at=round(at, 3))
