"""WHIP (RFC 9725) and WHEP endpoints: SDP offer in, answer and a resource out.

- ``POST /whip/{room}`` (host, or a KOC whose co-stream the host accepted),
  ``POST /whep/{room}[?publisher=<user>]`` (anyone in the room; default the
  host's stream): ``Content-Type: application/sdp``, at most 64 KiB, Bearer
  token → ``201 Created``, the answer, ``Location`` of the session resource.
  A WHIP POST to a room that has ended is ``409 room_ended``: an ended room
  stays ended (its replay stays what it was).
  The 201 carries the session's ``ETag``; ``Location`` is the resource's
  path, under the path of ``--public-url`` when it has one (a node behind a
  path-prefixing proxy).
- ``DELETE`` on that resource ends the session (200). The resource's last
  segment names the node holding the session; ``PATCH`` and ``DELETE`` may land
  on any node (a load balancer, a sibling of ``serve --workers``): one that does
  not hold the session passes the request on to the node that does
  (:mod:`signalling.services.peerhop`).
- ``PATCH`` on it (RFC 9725 §4.3), ``Content-Type:
  application/trickle-ice-sdpfrag`` (RFC 8840), the session's own token and
  ``If-Match`` with its ETag (or ``*``): trickled candidates and
  end-of-candidates are added to the session's ICE agent (204). New
  ufrag/pwd restart ICE (:mod:`media.icerestart`): 200 with the answer
  fragment and a new ETag, for a connected WHIP or WHEP session; one not
  connected yet is answered ``422 ice_restart_refused`` and kept as it was.
  A bad fragment is ``400 bad_sdpfrag`` and changes nothing.
- ``OPTIONS`` answers CORS preflights and ``Accept-Post: application/sdp``
  (``Accept-Patch`` on a session).
- STUN/TURN servers, when the operator configured them, come with the 201
  (and with an ``OPTIONS`` carrying the Bearer token) as ``Link`` headers,
  RFC 9725 §4.6 (:mod:`signalling.routes.iceservers`).
- A node at its media capacity answers ``503`` with ``Retry-After``.
- Every answer under ``/whip/`` and ``/whep/``, errors included, carries the
  CORS headers (:class:`MediaCors`), so a page on another origin reads the
  status and the error code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.rooms import RoomStatus
from media.offers import check_publisher_offer, check_viewer_offer
from media.peers import NegotiationError
from media.sdpfrag import FragmentError, SdpFrag, parse_sdpfrag
from signalling.node.http_boundary import (
    authorize,
    client_key,
    ctx,
    read_body,
    require_content_type,
    take,
)
from signalling.routes.iceservers import link_headers, options_links
from signalling.services import peerhop

MAX_SDP = 64 * 1024
MAX_SDPFRAG = 16 * 1024
SDPFRAG = "application/trickle-ice-sdpfrag"
PUBLISHERS = frozenset({tokens.Role.HOST, tokens.Role.KOC})
PLAYERS = frozenset({tokens.Role.HOST, tokens.Role.KOC, tokens.Role.VIEWER,
                     tokens.Role.OFFICER, tokens.Role.ADMIN, tokens.Role.NODE})  # fmt: skip
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Post, Accept-Patch, Retry-After",
}
MEDIA_PATHS = ("/whip/", "/whep/")


class MediaCors:
    """Add the CORS headers to every answer under ``/whip/`` and ``/whep/``: errors
    too (400, 401, 403, 404, 429, 503...), so a publisher page on another origin
    sees the status and the code (a browser hides a response without them).
    Headers an endpoint set itself are left alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(MEDIA_PATHS):
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in CORS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)


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
    try:
        check(offer)
    except NegotiationError as exc:
        raise LivecoreError(ErrorCode.BAD_SDP, str(exc)) from None
    return offer


async def _room_open(request: Request, room: str) -> None:
    """The room exists and has not ended (an ended room stays ended: 409 ``room_ended``)."""
    meta = await ctx(request).rooms.get(room)
    if meta is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    if meta.status is RoomStatus.ENDED:
        raise LivecoreError(ErrorCode.ROOM_ENDED, f"room {room!r} has ended: no live again")


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


def _resource(request: Request, kind: str, room: str, session_id: str) -> str:
    """The session's ``Location``: its path under ``--public-url``'s path, if any, its
    last segment naming this node (:mod:`signalling.services.peerhop`)."""
    settings = ctx(request).settings
    public = settings.public_url
    prefix = urlsplit(public).path.rstrip("/") if public else ""
    return f"{prefix}/{kind}/{room}/{peerhop.resource_id(session_id, settings.node_id)}"


def _tagged(response: Response, request: Request, session_id: str) -> Response:
    """``response`` with the session's ``ETag`` (RFC 9725 §4.3.1)."""
    response.headers["ETag"] = request.app.state.media.tag(session_id)
    return response


async def whip_post(request: Request) -> Response:
    room = _room(request)
    claims = await authorize(request, room=room, roles=PUBLISHERS)
    _limit(request, claims)
    offer = await _offer(request, check_publisher_offer)
    await _room_open(request, room)
    answer, session_id = await request.app.state.media.publish(room, claims, offer)
    created = _created(
        answer, _resource(request, "whip", room, session_id), link_headers(request, claims)
    )
    return _tagged(created, request, session_id)


async def whep_post(request: Request) -> Response:
    room = _room(request)
    claims = await authorize(request, room=room, roles=PLAYERS)
    _limit(request, claims)
    asked = request.query_params.get("publisher")
    if asked is not None and asked != "" and not tokens.valid_id(asked):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "publisher: not a valid user id")
    pull = claims.role is tokens.Role.NODE  # another node's copy: a section per layer
    offer = await _offer(request, functools.partial(check_viewer_offer, pull=pull))
    meta = await ctx(request).rooms.get(room)
    if meta is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    publisher = asked or meta.host
    answer, session_id = await request.app.state.media.play(room, claims, offer, publisher)
    created = _created(
        answer, _resource(request, "whep", room, session_id), link_headers(request, claims)
    )
    return _tagged(created, request, session_id)


def _delete(kind: str):  # type: ignore[no-untyped-def]
    async def delete(request: Request) -> Response:
        room = _room(request)
        claims = await authorize(request, room=room, roles=PLAYERS)
        session_id, holder = peerhop.session_of(request.path_params["session"])
        elsewhere = await _elsewhere(request, room, holder, b"")
        if elsewhere is not None:
            return elsewhere
        await request.app.state.media.end(session_id, kind, claims, room)
        return Response(status_code=200, headers=CORS)

    return delete


whip_delete = _delete("whip")
whep_delete = _delete("whep")


async def options(request: Request) -> Response:
    links = await options_links(request, str(request.path_params["room"]))
    headers = {**CORS, "Accept-Post": "application/sdp", **links}
    if "session" in request.path_params:
        headers["Accept-Patch"] = SDPFRAG
    return Response(status_code=204, headers=headers)


async def _elsewhere(
    request: Request, room: str, holder: str | None, body: bytes
) -> Response | None:
    """The answer of ``holder``, the node the session's resource names, when that is
    another node (a load balancer sent the request here); None to answer here."""
    if holder is None or holder == ctx(request).settings.node_id:
        return None
    return await peerhop.pass_on(ctx(request), request.app.state.hops, request, room,
                                 holder, body)  # fmt: skip


async def _sdpfrag(request: Request) -> tuple[SdpFrag, bytes]:
    """The PATCH body, refused ``bad_sdpfrag`` (naming the line at fault) unless it
    is a trickle-ice-sdpfrag this server reads (:mod:`media.sdpfrag`)."""
    require_content_type(request, SDPFRAG)
    body = await read_body(request, MAX_SDPFRAG)
    try:
        return parse_sdpfrag(body.decode("utf-8")), body
    except UnicodeDecodeError:
        raise LivecoreError(ErrorCode.BAD_SDPFRAG, "the fragment is not UTF-8 text") from None
    except FragmentError as exc:
        raise LivecoreError(ErrorCode.BAD_SDPFRAG, str(exc)) from None


async def patch(request: Request) -> Response:
    """``PATCH /whip|whep/{room}/{session}``: trickle ICE into the session (204), or
    restart its ICE (200, the answer fragment and the new ETag); see the module doc."""
    room = _room(request)
    kind = request.url.path.rstrip("/").split("/")[-3]  # .../{kind}/{room}/{session}
    roles = PUBLISHERS if kind == "whip" else PLAYERS
    claims = await authorize(request, room=room, roles=roles)
    frag, body = await _sdpfrag(request)
    session_id, holder = peerhop.session_of(request.path_params["session"])
    elsewhere = await _elsewhere(request, room, holder, body)
    if elsewhere is not None:
        return elsewhere
    media = request.app.state.media
    answer = await media.patch(
        session_id, kind, claims, room, frag, request.headers.get("if-match")
    )
    if answer is None:
        return Response(status_code=204, headers=CORS)
    restarted = Response(answer, status_code=200, media_type=SDPFRAG, headers=CORS)
    return _tagged(restarted, request, session_id)
