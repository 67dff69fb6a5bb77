"""Reservations (预约) over HTTP: reserve with the guest identity, count, calendar.

``POST``/``DELETE /api/rooms/{room}/reservations`` with the viewer's token (a
guest token is enough: no account) reserve or cancel; ``GET`` answers the
caller's own state and the count (the host sees the count on its console);
``GET /api/rooms/{room}/calendar.ics`` is the room's calendar entry. The
reservation page (``/y/{room}``) shows the time, the products and a QR code
of its own link, and reminds a reserved viewer in the page once the room is
live.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livecore import reserve, tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.rooms import Room, RoomStatus
from signalling.node.http_boundary import authorize, ctx, limit_writes
from signalling.routes.pages import _room_page

AUDIENCE = frozenset({tokens.Role.VIEWER, tokens.Role.OFFICER, tokens.Role.KOC})
READERS = AUDIENCE | {tokens.Role.HOST, tokens.Role.ADMIN}


def _room_id(request: Request) -> str:
    room: str = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


async def _room(request: Request, room_id: str) -> Room:
    room = await ctx(request).rooms.get(room_id)
    if room is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room_id!r} does not exist")
    return room


async def post_reservation(request: Request) -> Response:
    room_id = _room_id(request)
    limit_writes(request)
    claims = await authorize(request, room=room_id, roles=AUDIENCE)
    room = await _room(request, room_id)
    if room.status is RoomStatus.ENDED:
        raise LivecoreError(ErrorCode.ROOM_ENDED, "this live has ended")
    code, count = await ctx(request).stores.reservations.reserve(room_id, claims.user)
    if code == -1:
        raise LivecoreError(
            ErrorCode.RESERVATIONS_FULL, "this live has its maximum of reservations"
        )
    return JSONResponse({"reserved": True, "count": count, "changed": code == 1})


async def delete_reservation(request: Request) -> Response:
    room_id = _room_id(request)
    limit_writes(request)
    claims = await authorize(request, room=room_id, roles=AUDIENCE)
    await _room(request, room_id)
    count = await ctx(request).stores.reservations.cancel(room_id, claims.user)
    return JSONResponse({"reserved": False, "count": count})


async def get_reservation(request: Request) -> Response:
    room_id = _room_id(request)
    claims = await authorize(request, room=room_id, roles=READERS)
    await _room(request, room_id)
    mine, count = await ctx(request).stores.reservations.status(room_id, claims.user)
    return JSONResponse({"reserved": mine, "count": count})


async def calendar(request: Request) -> Response:
    room_id = _room_id(request)
    room = await _room(request, room_id)
    url = str(request.url_for("reserve_page", room=room_id))
    body = reserve.ics(room, url, int(ctx(request).clock.time()))
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{room_id}.ics"'},
    )


async def reserve_page(request: Request) -> Response:
    """``GET /y/{room}``: the reservation page."""
    return _room_page("reserve", request)


def routes() -> list[Route]:
    return [
        Route("/y/{room}", reserve_page, methods=["GET"], name="reserve_page"),
        Route("/api/rooms/{room}/reservations", post_reservation, methods=["POST"]),
        Route("/api/rooms/{room}/reservations", delete_reservation, methods=["DELETE"]),
        Route("/api/rooms/{room}/reservations", get_reservation, methods=["GET"]),
        Route("/api/rooms/{room}/calendar.ics", calendar, methods=["GET"]),
    ]
