"""WHIP (RFC 9725) and WHEP endpoints: SDP offer in, answer and a resource out.

- ``POST /whip/{room}`` (host, or a KOC whose co-stream the host accepted),
  ``POST /whep/{room}[?publisher=<user>]`` (anyone in the room; default the
  host's stream): ``Content-Type: application/sdp``, at most 64 KiB, Bearer
  token → ``201 Created``, the answer, ``Location`` of the session resource.
- ``DELETE`` on that resource ends the session (200).
- ``PATCH`` (trickle ICE / ICE restart) is not supported: ``405`` with
  ``Allow``, as RFC 9725 §4.3 prescribes for a resource without PATCH;
  clients send complete offers (gathering finished), which every WHIP client
  can do.
- ``OPTIONS`` answers CORS preflights and ``Accept-Post: application/sdp``.
- STUN/TURN servers, when the operator configured them, come with the 201
  (and with an ``OPTIONS`` carrying the Bearer token) as ``Link`` headers,
  RFC 9725 §4.6 (:mod:`signalling.iceservers`).
- A node at its media capacity answers ``503`` with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import sdp as aiortc_sdp
from starlette.requests import Request
from starlette.responses import Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from media.offers import check_publisher_offer, check_viewer_offer
from media.peers import NegotiationError
from signalling.node.http_boundary import (
    authorize,
    client_key,
    ctx,
    read_body,
    require_content_type,
    take,
)
from signalling.routes.iceservers import link_headers, options_links

MAX_SDP = 64 * 1024
PUBLISHERS = frozenset({tokens.Role.HOST, tokens.Role.KOC})
PLAYERS = frozenset({tokens.Role.HOST, tokens.Role.KOC, tokens.Role.VIEWER,
                     tokens.Role.OFFICER, tokens.Role.ADMIN, tokens.Role.NODE})  # fmt: skip
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Accept-Post, Link",
}


def _room(request: Request) -> str:
    room = str(request.path_params["room"])
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return room


async def _offer(request: Request, check: Callable[[str], object]) -> str:
    """The offer, refused ``bad_sdp`` unless ``check`` (what the endpoint needs of an
    offer in any state of the room) passes: before any state is looked up, so a
    junk offer is refused alike whoever is live."""
    require_content_type(request, "application/sdp")
    body = await read_body(request, MAX_SDP)
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise LivecoreError(ErrorCode.BAD_SDP, "the offer is not UTF-8 text") from None
    if not offer.startswith("v=0"):
        raise LivecoreError(ErrorCode.BAD_SDP, "the body is not an SDP offer (must start v=0)")
    check_sdp(offer)
    try:
        check(offer)
    except NegotiationError as exc:
        raise LivecoreError(ErrorCode.BAD_SDP, str(exc)) from None
    return offer


def check_sdp(offer: str) -> None:
    """Refuse (``bad_sdp``) an offer the SDP parser cannot read.

    aiortc's parser raises more than ValueError on hostile input (StopIteration
    for an ``a=fmtp`` of an unknown payload type, which inside a coroutine
    becomes a RuntimeError): anything it raises is a bad offer, never a 500.
    """
    try:
        aiortc_sdp.SessionDescription.parse(offer)
    except Exception as exc:  # the parser's failure modes are not all documented
        raise LivecoreError(ErrorCode.BAD_SDP, f"unreadable SDP offer: {exc!r}"[:200]) from None


async def _room_exists(request: Request, room: str) -> None:
    if await ctx(request).rooms.get(room) is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")


def _limit(request: Request, claims: tokens.Claims) -> None:
    """Spend one WHIP/WHEP POST of the user and of the address, or refuse (429).
    Node-to-node pulls are exempt (one per publisher, already bounded)."""
    if claims.role is not tokens.Role.NODE:
        node = ctx(request)
        take(request, node.media_posts, "media", caller=claims.user, address=client_key(request))


def _created(answer: str, location: str, links: dict[str, str]) -> Response:
    return Response(
        answer, status_code=201, media_type="application/sdp",
        headers={"Location": location, **CORS, **links},
    )  # fmt: skip


async def whip_post(request: Request) -> Response:
    room = _room(request)
    claims = await authorize(request, room=room, roles=PUBLISHERS)
    _limit(request, claims)
    offer = await _offer(request, check_publisher_offer)
    await _room_exists(request, room)
    answer, session_id = await request.app.state.media.publish(room, claims, offer)
    return _created(answer, f"/whip/{room}/{session_id}", link_headers(request, claims))


async def whep_post(request: Request) -> Response:
    room = _room(request)
    claims = await authorize(request, room=room, roles=PLAYERS)
    _limit(request, claims)
    asked = request.query_params.get("publisher")
    if asked is not None and asked != "" and not tokens.valid_id(asked):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "publisher: not a valid user id")
    offer = await _offer(request, check_viewer_offer)
    meta = await ctx(request).rooms.get(room)
    if meta is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    publisher = asked or meta.host
    answer, session_id = await request.app.state.media.play(room, claims, offer, publisher)
    return _created(answer, f"/whep/{room}/{session_id}", link_headers(request, claims))


def _delete(kind: str):  # type: ignore[no-untyped-def]
    async def delete(request: Request) -> Response:
        room = _room(request)
        claims = await authorize(request, room=room, roles=PLAYERS)
        await request.app.state.media.end(request.path_params["session"], kind, claims, room)
        return Response(status_code=200, headers=CORS)

    return delete


whip_delete = _delete("whip")
whep_delete = _delete("whep")


async def options(request: Request) -> Response:
    links = await options_links(request, str(request.path_params["room"]))
    return Response(status_code=204, headers={**CORS, "Accept-Post": "application/sdp", **links})


async def patch(request: Request) -> Response:
    """Trickle ICE and ICE restarts are not supported (RFC 9725 §4.3): 405."""
    return Response(
        '{"code": "method_not_allowed", "message": "trickle ICE and ICE restart are not '
        'supported: send a complete offer"}',
        status_code=405, media_type="application/json",
        headers={"Allow": "DELETE, OPTIONS", **CORS},
    )  # fmt: skip
