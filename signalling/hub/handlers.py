"""What each client message does, and who may send it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgpack

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.bus import Emitted
from livecore.store.polls import VoteResult
from livecore.tokens import Role

if TYPE_CHECKING:
    from signalling.hub.connection import HubConnection
    from signalling.hub.hub import Hub

Handler = Callable[["Hub", "HubConnection", wire.Message], Awaitable[None]]

EVERYONE = frozenset({Role.HOST, Role.KOC, Role.VIEWER, Role.OFFICER})
AUDIENCE = frozenset({Role.KOC, Role.VIEWER, Role.OFFICER})
HOST = frozenset({Role.HOST})


def _ack(conn: HubConnection, message: wire.Message, emitted: Emitted | None = None) -> None:
    if message.request_id is None:
        return
    if emitted is None:
        conn.send(wire.ack(message.request_id))
    else:
        conn.send(wire.ack(message.request_id, o=emitted.offset))


def _user(conn: HubConnection) -> str:
    assert conn.claims is not None
    return conn.claims.user


async def comment(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    assert conn.claims is not None
    text = hub.rules.check(message.fields["text"])
    limit_key = f"{conn.room_id}:{conn.claims.user}"
    if conn.claims.role is not Role.HOST and not hub.comment_limits.allow(limit_key):
        wait = hub.comment_limits.retry_after(limit_key)
        raise LivecoreError(ErrorCode.RATE_LIMITED, f"one comment at a time; retry in {wait:.1f} s")
    cid = message.fields.get("cid")
    event = {"t": "comment", "user": conn.claims.user, "role": conn.claims.role.value,
             "text": text, "ts": int(hub.ctx.clock.time() * 1000)}  # fmt: skip
    if cid:
        event["cid"] = cid
    result = await hub.bus.comment(conn.room_id, conn.claims.user, msgpack.packb(event), cid)
    if isinstance(result, int):
        raise LivecoreError(ErrorCode.MUTED, f"you are muted for {result} more seconds")
    _ack(conn, message, result)


async def like(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    if conn.room is not None:
        conn.room.local_likes += message.fields["n"]
    _ack(conn, message)


async def vote(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    poll, option = message.fields["poll"], message.fields["option"]
    result, _ = await hub.polls.vote(conn.room_id, poll, _user(conn), option, hub._now())
    if result is VoteResult.NOT_FOUND:
        raise LivecoreError(ErrorCode.POLL_NOT_FOUND, f"no poll {poll!r} in this room")
    if result is VoteResult.CLOSED:
        raise LivecoreError(ErrorCode.POLL_CLOSED, f"poll {poll!r} is closed")
    if result is VoteResult.BAD_OPTION:
        raise wire.invalid("option", f"poll {poll!r} has no option {option}")
    if result is VoteResult.COUNTED and conn.room is not None:
        conn.room.dirty_polls.add(poll)
    _ack(conn, message)


async def poll_open(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    now = hub._now()
    duration = message.fields.get("duration_s")
    closes_at = now + duration if duration else 0
    opened = await hub.polls.open(
        conn.room_id, message.fields["question"], message.fields["options"], closes_at, now
    )
    if opened is None:
        raise LivecoreError(ErrorCode.TOO_MANY_POLLS, "this room has its maximum of polls")
    poll, emitted = opened
    if message.request_id is not None:
        conn.send(wire.ack(message.request_id, o=emitted.offset, poll=poll))


async def poll_close(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    poll = message.fields["poll"]
    closed = await hub.polls.close(conn.room_id, poll, hub._now())
    if closed is None:
        raise LivecoreError(ErrorCode.POLL_NOT_FOUND, f"no poll {poll!r} in this room")
    if closed is False:
        raise LivecoreError(ErrorCode.POLL_CLOSED, f"poll {poll!r} is already closed")
    assert isinstance(closed, Emitted)
    _ack(conn, message, closed)


async def _comment_at(hub: Hub, conn: HubConnection, offset: int) -> dict[str, object]:
    entries = await hub.bus.history(conn.room_id, offset - 1, offset, limit=1)
    if entries:
        event = msgpack.unpackb(entries[0][1], raw=False)
        if event.get("t") == wire.EventType.COMMENT:
            return dict(event)
    raise LivecoreError(ErrorCode.COMMENT_NOT_FOUND, f"no comment at offset {offset}")


async def delete_comment(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    target = message.fields["offset"]
    await _comment_at(hub, conn, target)
    event = {"t": "comment_deleted", "target": target, "by": _user(conn)}
    await hub.bus.delete(conn.room_id, target, msgpack.packb(event))
    _ack(conn, message)


async def mute(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    user, seconds = message.fields["user"], message.fields["duration_s"]
    event = {"t": "user_muted", "user": user, "until": hub._now() + seconds}
    _ack(conn, message, await hub.bus.mute(conn.room_id, user, seconds, msgpack.packb(event)))


async def _question(
    hub: Hub, conn: HubConnection, message: wire.Message, *, answered: bool
) -> None:
    """Pin the comment at ``offset`` as the room's question, answered or not."""
    target = message.fields["offset"]
    found = await _comment_at(hub, conn, target)
    question = {"target": target, "user": found.get("user"), "text": found.get("text"),
                "answered": answered}  # fmt: skip
    kind = "question_answered" if answered else "question_pinned"
    event = {"t": kind, **question}
    emitted = await hub.bus.set_state(
        conn.room_id, "question", msgpack.packb(question), msgpack.packb(event)
    )
    _ack(conn, message, emitted)


async def pin_question(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    await _question(hub, conn, message, answered=False)


async def answer_question(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    await _question(hub, conn, message, answered=True)


async def card(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    body = dict(message.fields)
    event = {"t": "card", "card": body}
    emitted = await hub.bus.set_state(
        conn.room_id, f"card:{body['kind']}", msgpack.packb(body), msgpack.packb(event)
    )
    _ack(conn, message, emitted)


from signalling.hub import commerce, costream  # noqa: E402 - after the handlers they extend

T = wire.ClientType
ROUTES: dict[wire.ClientType, tuple[frozenset[Role], Handler]] = {
    T.COMMENT: (EVERYONE, comment),
    T.LIKE: (EVERYONE, like),
    T.VOTE: (AUDIENCE, vote),
    T.POLL_OPEN: (HOST, poll_open),
    T.POLL_CLOSE: (HOST, poll_close),
    T.DELETE_COMMENT: (HOST, delete_comment),
    T.MUTE: (HOST, mute),
    T.PIN_QUESTION: (HOST, pin_question),
    T.ANSWER_QUESTION: (HOST, answer_question),
    T.CARD: (HOST, card),
    T.LOCATE: (AUDIENCE, commerce.locate),
    T.CHOOSE_COMMUNITY: (AUDIENCE, commerce.choose_community),
    T.GROUPBUY_OPEN: (HOST, commerce.groupbuy_open),
    T.GROUPBUY_JOIN: (AUDIENCE, commerce.groupbuy_join),
    T.GROUPBUY_LEAVE: (AUDIENCE, commerce.groupbuy_leave),
    T.OFFICER_APPLY: (AUDIENCE, commerce.officer_apply),
    T.OFFICER_ME: (AUDIENCE, commerce.officer_me),
    T.COMMISSION_SET: (HOST, commerce.commission_set),
    T.COSTREAM_REQUEST: (frozenset({Role.KOC}), costream.request),
    T.COSTREAM_ACCEPT: (HOST, costream.accept),
    T.COSTREAM_DECLINE: (HOST, costream.decline),
    T.COSTREAM_END: (frozenset({Role.HOST, Role.KOC}), costream.end),
}


async def dispatch(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    """Check the sender's role, then run the message's handler."""
    assert conn.claims is not None
    roles, handler = ROUTES[message.type]
    if conn.claims.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        role = conn.claims.role.value
        raise LivecoreError(
            ErrorCode.TOKEN_WRONG_ROLE,
            f"role {role!r} may not send {message.type.value} (allowed: {allowed})",
        )
    await handler(hub, conn, message)
