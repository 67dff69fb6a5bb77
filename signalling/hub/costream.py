"""KOC co-streaming (连麦) over the room channel.

A KOC asks (``costream_request``); the host sees ``costream_requested`` and
answers with ``costream_accept`` or ``costream_decline``. An accepted KOC
gets a publish grant (2 minutes to start, checked by ``POST /whip``) and is
on air until the host — or the KOC — sends ``costream_end``: every node then
closes that KOC's WHIP session if it holds it, and the room hears
``costream_ended``. At most ``--costream-max`` KOCs are on air at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import Role

if TYPE_CHECKING:
    from signalling.hub.connection import HubConnection
    from signalling.hub.hub import Hub


def _ack(conn: HubConnection, message: wire.Message) -> None:
    if message.request_id is not None:
        conn.send(wire.ack(message.request_id))


async def _event(hub: Hub, room: str, kind: str, user: str) -> None:
    await hub.bus.emit(room, msgpack.packb({"t": kind, "user": user}))


async def request(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    assert conn.claims is not None
    if not await hub.media_store.request(conn.room_id, conn.claims.user, hub._now()):
        raise LivecoreError(ErrorCode.RATE_LIMITED, "too many co-stream requests are waiting")
    await _event(hub, conn.room_id, "costream_requested", conn.claims.user)
    _ack(conn, message)


async def accept(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    user = message.fields["user"]
    result = await hub.media_store.accept(conn.room_id, user, hub.settings.costream_max)
    if result == -1:
        raise LivecoreError(ErrorCode.NO_REQUEST, f"{user!r} has not asked to co-stream")
    if result == -2:
        raise LivecoreError(
            ErrorCode.COSTREAM_FULL, f"at most {hub.settings.costream_max} co-streamers at once"
        )
    await _event(hub, conn.room_id, "costream_accepted", user)
    _ack(conn, message)


async def decline(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    user = message.fields["user"]
    if not await hub.media_store.decline(conn.room_id, user):
        raise LivecoreError(ErrorCode.NO_REQUEST, f"{user!r} has not asked to co-stream")
    await _event(hub, conn.room_id, "costream_declined", user)
    _ack(conn, message)


async def end(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    """The host ends anyone's co-stream; a KOC may end its own."""
    assert conn.claims is not None
    user = message.fields["user"]
    if conn.claims.role is not Role.HOST and user != conn.claims.user:
        raise LivecoreError(ErrorCode.TOKEN_WRONG_ROLE, "only the host ends another's co-stream")
    on_air = await hub.media_store.end(conn.room_id, user)
    await hub.bus.ephemeral(conn.room_id, msgpack.packb({"k": "media_end", "user": user}))
    if on_air:
        await _event(hub, conn.room_id, "costream_ended", user)
    _ack(conn, message)
