"""The room channel's routing table: message type -> (roles, handler).

A new message type is one handler function and one row here. :func:`dispatch`
checks the sender's role before the handler runs. A handler refuses by raising a
``LivecoreError`` or, on a hot path, by returning it: a raised error's traceback
holds the handler's frames (a reference cycle when a frame also holds the error),
garbage only the cyclic collector frees, whose pauses the room then feels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import Role
from signalling.hub.context import Context
from signalling.hub.handlers import (
    cards,
    chat,
    commerce,
    costream,
    coupons,
    draw,
    explain,
    flash,
    officers,
    polls,
    session,
    trace,
)

Handler = Callable[[Context, wire.Message], Awaitable[LivecoreError | None]]
#: A handler that answers at once, without a task, when it can: True (answered),
#: the refusal, or False (it needs the store: the message goes to its ``Handler``).
Quick = Callable[[Context, wire.Message], LivecoreError | bool]

EVERYONE = frozenset({Role.HOST, Role.KOC, Role.VIEWER, Role.OFFICER})
AUDIENCE = frozenset({Role.KOC, Role.VIEWER, Role.OFFICER})
HOST = frozenset({Role.HOST})
KOC = frozenset({Role.KOC})
ON_AIR = frozenset({Role.HOST, Role.KOC})

T = wire.ClientType
ROUTES: dict[wire.ClientType, tuple[frozenset[Role], Handler]] = {
    T.TOKEN: (EVERYONE, session.refresh),
    T.COMMENT: (EVERYONE, chat.comment),
    T.LIKE: (EVERYONE, chat.like),
    T.DELETE_COMMENT: (HOST, chat.delete_comment),
    T.MUTE: (HOST, chat.mute),
    T.PIN_QUESTION: (HOST, chat.pin_question),
    T.ANSWER_QUESTION: (HOST, chat.answer_question),
    T.VOTE: (AUDIENCE, polls.vote),
    T.POLL_OPEN: (HOST, polls.poll_open),
    T.POLL_CLOSE: (HOST, polls.poll_close),
    T.CARD: (HOST, cards.card),
    T.MARK: (HOST, cards.mark),
    T.EXPLAIN: (HOST, explain.explain),
    T.BATCH_PIN: (HOST, trace.batch_pin),
    T.BATCH_UNPIN: (HOST, trace.batch_unpin),
    T.LOCATE: (AUDIENCE, commerce.locate),
    T.CHOOSE_COMMUNITY: (AUDIENCE, commerce.choose_community),
    T.GROUPBUY_OPEN: (HOST, commerce.groupbuy_open),
    T.GROUPBUY_JOIN: (AUDIENCE, commerce.groupbuy_join),
    T.GROUPBUY_LEAVE: (AUDIENCE, commerce.groupbuy_leave),
    T.OFFICER_APPLY: (AUDIENCE, officers.officer_apply),
    T.OFFICER_ME: (AUDIENCE, officers.officer_me),
    T.COMMISSION_SET: (HOST, officers.commission_set),
    T.COSTREAM_REQUEST: (KOC, costream.request),
    T.COSTREAM_ACCEPT: (HOST, costream.accept),
    T.COSTREAM_DECLINE: (HOST, costream.decline),
    T.COSTREAM_END: (ON_AIR, costream.end),
    T.FLASH_START: (HOST, flash.flash_start),
    T.FLASH_STOP: (HOST, flash.flash_stop),
    T.FLASH_BUY: (AUDIENCE, flash.flash_buy),
    T.COUPON_CREATE: (HOST, coupons.coupon_create),
    T.COUPON_CLAIM: (AUDIENCE, coupons.coupon_claim),
    T.DRAW_OPEN: (HOST, draw.draw_open),
    T.DRAW_ENTER: (AUDIENCE, draw.draw_enter),
    T.DRAW_ROLL: (HOST, draw.draw_roll),
}

#: Quick handlers (:meth:`signalling.hub.hub.Hub.handle_now`): a sale's opening rush
#: is thousands of taps a node answers from what it knows, one task each otherwise.
QUICK: dict[wire.ClientType, Quick] = {T.FLASH_BUY: flash.flash_buy_now}


#: Types that cost the node next to nothing (no store write): they spend the
#: user's cheap budget; every other type spends the costly one (half the rate).
CHEAP = frozenset({T.LIKE, T.TOKEN, T.OFFICER_ME, T.LOCATE})
#: What a room's shared reading (:mod:`signalling.hub.reading`) follows by
#: itself: every other message that succeeds makes the next visitor read afresh.
FOLLOWED = frozenset(
    {*CHEAP, T.COMMENT, T.GROUPBUY_JOIN, T.CHOOSE_COMMUNITY, T.FLASH_BUY, T.COUPON_CLAIM}
)

#: Refusals that tell a shopper how a race went (sold out, none left), not a client's
#: fault: a shopper tapping 抢 again and again is not closed for "too many errors".
OUTCOMES = frozenset(
    {ErrorCode.FLASH_SOLD_OUT, ErrorCode.FLASH_ENDED, ErrorCode.FLASH_NOT_STARTED,
     ErrorCode.FLASH_LIMIT, ErrorCode.COUPON_GONE, ErrorCode.COUPON_LIMIT,
     ErrorCode.COUPON_TASK, ErrorCode.ROOM_NOT_LIVE}
)  # fmt: skip


def check_role(role: Role, roles: frozenset[Role], mtype: wire.ClientType) -> None:
    """Refuse (``token_wrong_role``) unless ``role`` may send ``mtype``. Pure."""
    if role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise LivecoreError(
            ErrorCode.TOKEN_WRONG_ROLE,
            f"role {role.value!r} may not send {mtype.value} (allowed: {allowed})",
        )


async def dispatch(ctx: Context, message: wire.Message) -> LivecoreError | None:
    """Check the sender's role, then run the message's handler; the refusal it
    returned, if any (one it raised propagates)."""
    roles, handler = ROUTES[message.type]
    check_role(ctx.claims.role, roles, message.type)
    return await handler(ctx, message)
