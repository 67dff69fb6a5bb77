"""Pickup (自提/核销) over HTTP: a buyer's code, and the pickup counter redeeming it.

``POST /api/rooms/{room}/pickup/code`` {gb} — the buyer (viewer, officer or koc
token of the room): the code of their order in a formed group, with the
pickup point of the group's compound. ``POST /api/rooms/{room}/pickup/redeem``
{code} — a ``pickup`` token of the room (or its host, or an admin): redeems
the code once, tells the shop (a ``pickup`` entry in the orders stream and
webhook) and confirms the order's share-officer commission as the shop's
``received`` receipt would. A refunded order gets no code, and its code, if
issued before the refund, is refused at the counter (409 ``order_refunded``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livecore import pickup, tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import Scope
from livecore.store import pickup as store
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json
from signalling.routes.pages import _room_page

BUYERS = frozenset({tokens.Role.VIEWER, tokens.Role.OFFICER, tokens.Role.KOC})
COUNTER = frozenset({tokens.Role.PICKUP, tokens.Role.HOST, tokens.Role.ADMIN})
_COMMISSION = {"c": "confirmed", "r": "refunded", "none": "none"}


def _room(request: Request) -> str:
    room: str = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


async def _body(request: Request, field: str) -> Any:
    body = await read_json(request, 1024)
    if not isinstance(body, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body must be a JSON object")
    unknown = set(body) - {field}
    if unknown:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{sorted(unknown)[0]}: unknown field")
    return body.get(field)


def _redeemed(raw: str) -> dict[str, Any] | None:
    if not raw:
        return None
    ts, _, by = raw.partition("|")
    return {"at": int(ts), "by": by}


async def _pickup_point(request: Request, group: str) -> str | None:
    communities = ctx(request).stores.communities
    found = (await communities.refresh()).by_id.get(group)
    return found.pickup or found.name if found is not None else None


async def my_code(request: Request) -> Response:
    """The buyer's pickup code for a formed group (the same code every time)."""
    room = _room(request)
    limit_writes(request)
    claims = await authorize(request, room=room, roles=BUYERS)
    gid = await _body(request, "gb")
    if not isinstance(gid, str) or not tokens.valid_id(gid):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "gb: 1-64 of A-Z a-z 0-9 _ . : -")
    node = ctx(request)
    pickups = node.stores.pickups
    group = await pickups.group_of(room, gid, claims.user)
    code = pickup.code_for(node.secret, room, gid, claims.user)
    result, qty, redeemed = (
        await pickups.issue(room, gid, group, claims.user, code)
        if group is not None
        else (store.NOT_MEMBER, 0, "")
    )
    if result == store.NOT_MEMBER or group is None:
        raise LivecoreError(ErrorCode.NOT_A_BUYER, f"you are in no group of {gid!r}")
    if result == store.NOT_FORMED:
        raise LivecoreError(ErrorCode.ORDER_NOT_FOUND, "your group has not formed yet")
    if result == store.REFUNDED:
        raise LivecoreError(ErrorCode.ORDER_REFUNDED, "this order was refunded: no pickup")
    if result == store.COLLISION:  # pragma: no cover - one in 10^10 per pair of orders
        raise LivecoreError(ErrorCode.INTERNAL, "pickup code collision; ask the shop")
    point = None if group == Scope.ROOM.value else await _pickup_point(request, group)
    return JSONResponse(
        {"code": code, "shown": pickup.shown(code), "gb": gid, "group": group, "qty": qty,
         "pickup": point, "redeemed": _redeemed(redeemed)}
    )  # fmt: skip


async def redeem(request: Request) -> Response:
    """Redeem a code once at the pickup counter."""
    room = _room(request)
    limit_writes(request)
    claims = await authorize(request, room=room, roles=COUNTER)
    code = pickup.normalise(await _body(request, "code"))
    node = ctx(request)
    now = int(node.clock.time())
    result, order, before = await node.stores.pickups.redeem(room, code, now, claims.user)
    if order is None:
        raise LivecoreError(ErrorCode.PICKUP_NOT_FOUND, "no such pickup code in this room")
    if result == store.ORDER_REFUNDED:
        raise LivecoreError(ErrorCode.ORDER_REFUNDED, "this order was refunded: hand nothing out")
    await node.stores.groupbuys.note_order_room(room)
    # Idempotent: a retry after a crash between the two steps confirms it then.
    _, state = await node.stores.groupbuys.settle(
        room, order.gid, order.group, order.user, "received", now
    )
    if result == store.REDEEMED:
        at = _redeemed(before) or {}
        raise LivecoreError(
            ErrorCode.PICKUP_REDEEMED, f"this code was redeemed at {at.get('at')} (Unix time)"
        )
    return JSONResponse(
        {"redeemed": True, "gb": order.gid, "group": order.group, "user": order.user,
         "qty": order.qty, "commission": _COMMISSION.get(state, "none")}
    )  # fmt: skip


async def pickup_page(request: Request) -> Response:
    """``GET /p/{room}``: the pickup counter's page (pickup token in the URL fragment)."""
    return _room_page("pickup", request)


def routes() -> list[Route]:
    return [
        Route("/p/{room}", pickup_page, methods=["GET"]),
        Route("/api/rooms/{room}/pickup/code", my_code, methods=["POST"]),
        Route("/api/rooms/{room}/pickup/redeem", redeem, methods=["POST"]),
    ]
