"""One module per topic of the room channel; each handler: validate -> store call -> ack.

A handler is ``async def handler(ctx: Context, message: wire.Message) -> None``;
it raises :class:`~livecore.errors.LivecoreError` to refuse (the hub answers
with an ``error``). The table of who may send what is :mod:`signalling.hub.routes`.
"""
