"""The shop backend reports what became of a formed order: commission follows it.

``POST /api/rooms/{room}/receipts`` with a JSON body
``{"gb", "group", "user", "outcome": "received" | "refunded"}``. The shop signs it
the way livecore signs the orders webhook: ``X-Livecore-Timestamp`` (Unix
seconds, within 5 minutes of the node's clock) and ``X-Livecore-Signature:
sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<raw body>`` with the orders
webhook secret. That secret is the only credential this endpoint takes: it
can settle orders, nothing else.

Commission is pending from formation; ``received`` confirms it (the seeds' rule:
paid once the buyer confirms receipt), ``refunded`` reverses it (pending or
confirmed). Repeats answer 200 with ``changed: false``; a refunded order cannot
be confirmed afterwards (409 ``order_refunded``).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.replies import as_str
from signalling.node.http_boundary import (
    authorize,
    ctx,
    limit_writes,
    read_body,
    require_content_type,
)
from signalling.services import orders
from signalling.services.orders import sign

#: How far the shop's timestamp may be from the node's clock.
MAX_SKEW_S = 300
OUTCOMES = ("received", "refunded")
_STATE = {"c": "confirmed", "r": "refunded", "none": "none"}


def signed_payload(timestamp: str, body: bytes) -> bytes:
    """What the signature covers: the timestamp, a dot, the raw body."""
    return timestamp.encode() + b"." + body


def _check_signature(request: Request, body: bytes, secret: str, now: float) -> None:
    stamp = request.headers.get("x-livecore-timestamp", "")
    given = request.headers.get("x-livecore-signature", "")
    if not stamp.isdigit() or abs(int(stamp) - now) > MAX_SKEW_S:
        raise LivecoreError(
            ErrorCode.TOKEN_EXPIRED, "X-Livecore-Timestamp missing or more than 5 minutes off"
        )
    expected = sign(secret.encode(), signed_payload(stamp, body))
    if not hmac.compare_digest(expected, given):
        raise LivecoreError(
            ErrorCode.TOKEN_BAD_SIGNATURE, "X-Livecore-Signature does not match the body"
        )


def _field(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not tokens.valid_id(value):
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}: 1-64 of A-Z a-z 0-9 _ . : -")
    return value


async def post_receipt(request: Request) -> Response:
    """Confirm or reverse the commission of one member's formed order."""
    limit_writes(request)
    node = ctx(request)
    secret = node.settings.orders_webhook_secret
    if not secret:
        raise LivecoreError(
            ErrorCode.NOT_FOUND, "receipts need the orders webhook secret configured on the node"
        )
    room = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    require_content_type(request, "application/json")
    raw = await read_body(request, 4096)
    _check_signature(request, raw, secret, node.clock.time())
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body is not valid JSON") from None
    if not isinstance(body, dict) or set(body) != {"gb", "group", "user", "outcome"}:
        raise LivecoreError(
            ErrorCode.BAD_REQUEST, 'body must be {"gb", "group", "user", "outcome"}'
        )
    gb, group, user = _field(body, "gb"), _field(body, "group"), _field(body, "user")
    outcome = body["outcome"]
    if outcome not in OUTCOMES:
        raise LivecoreError(ErrorCode.INVALID_FIELD, "outcome: received or refunded")
    code, state = await node.stores.groupbuys.settle(
        room, gb, group, user, outcome, int(node.clock.time())
    )
    if code == -1:
        raise LivecoreError(
            ErrorCode.ORDER_NOT_FOUND, f"no formed order of {user!r} in group {group!r} of {gb!r}"
        )
    if code == -2:
        raise LivecoreError(ErrorCode.ORDER_REFUNDED, "this order was refunded; it stays refunded")
    return JSONResponse({"changed": code == 1, "commission": _STATE.get(state, state)})


async def dead_letters(request: Request) -> Response:
    """``GET /api/rooms/{room}/orders/dead`` (admin): orders the webhook refused for good."""
    room = request.path_params["room"]
    await authorize(request, room=room, roles=frozenset({tokens.Role.ADMIN}))
    entries: Any = await ctx(request).redis.xrange(orders.dead_key(room), count=1000)
    out = [{as_str(k): as_str(v) for k, v in fields.items()} for _, fields in entries]
    return JSONResponse({"dead": out})


async def redrive(request: Request) -> Response:
    """``POST /api/rooms/{room}/orders/redrive`` (admin): send the dead letters again."""
    limit_writes(request)
    room = request.path_params["room"]
    await authorize(request, room=room, roles=frozenset({tokens.Role.ADMIN}))
    return JSONResponse({"redriven": await orders.redrive(ctx(request).redis, room)})
