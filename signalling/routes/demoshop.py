"""The demo's shop stand-in (``--demo`` only): confirm a formed group's receipt by hand.

A real node learns that a formed order was received from the shop backend's
signed receipt (:mod:`signalling.routes.receipts`). A ``make run`` node has no
shop, so the loop would stop at "commission pending". With ``--demo`` the host
console shows a card labelled as a demo whose button calls
``POST /api/rooms/{room}/demo/receipts`` with ``{"gb", "group"}``: every member's
formed order of that group is settled ``received`` by the same store call a
signed receipt makes, and the officers' commission turns confirmed. Without
``--demo`` the endpoint answers 404 ``not_found`` (to the room's host; others
are refused first, as everywhere).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json

HOSTS = frozenset({tokens.Role.HOST, tokens.Role.ADMIN})


def _field(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not tokens.valid_id(value):
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}: 1-64 of A-Z a-z 0-9 _ . : -")
    return value


async def confirm_group(request: Request) -> Response:
    """Settle every formed order of one group ``received`` (the demo's shop)."""
    node = ctx(request)
    limit_writes(request)
    room = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    await authorize(request, room=room, roles=HOSTS)
    if not node.settings.demo:
        raise LivecoreError(ErrorCode.NOT_FOUND, "the demo shop runs on a --demo node only")
    body = await read_json(request, 1024)
    if not isinstance(body, dict) or set(body) != {"gb", "group"}:
        raise LivecoreError(ErrorCode.BAD_REQUEST, 'body must be {"gb", "group"}')
    gb, group = _field(body, "gb"), _field(body, "group")
    store, now = node.stores.groupbuys, int(node.clock.time())
    members = await store.members(room, gb, group)
    if not members or (await store.group(room, gb, group)).status != "formed":
        raise LivecoreError(ErrorCode.ORDER_NOT_FOUND, f"group {group!r} of {gb!r} has not formed")
    confirmed = 0
    for user in sorted(members):
        code, _ = await store.settle(room, gb, group, user, "received", now)
        confirmed += code == 1
    return JSONResponse({"confirmed": confirmed, "orders": len(members)})
