"""STUN/TURN servers for the caller: ``Link`` headers of WHIP/WHEP, JSON for the pages.

The node mints TURN credentials per caller (:mod:`livecore.turn`): the
username carries the caller's user id and the expiry; a credential is only
handed to someone holding a valid room token, and opens no new allocation
after ``--turn-ttl`` seconds (coturn checks the expiry when an allocation is
made; one made in time is refreshed past it, so a long stream is not cut).

- WHIP/WHEP ``201 Created`` and an ``OPTIONS`` that carries a valid Bearer
  token of the room: ``Link: <turn:...>; rel="ice-server"; username=...; credential=...;
  credential-type="password"`` (RFC 9725 §4.6). A CORS preflight carries no
  token and gets none; neither does an OPTIONS with a refused token (still 204).
- ``GET /api/rooms/{room}/ice-servers`` (any room role): ``{"iceServers":
  [RTCIceServer...], "expires": <unix time>, "ttl": <seconds>}`` for a page
  to configure its ``RTCPeerConnection`` before it makes its offer (the
  pages send complete offers, so relay candidates must be gathered first).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import LivecoreError
from signalling.node.http_boundary import authorize, ctx

#: Room roles that may fetch servers (the WHEP players: everyone in the room).
ROLES = frozenset({tokens.Role.HOST, tokens.Role.KOC, tokens.Role.VIEWER,
                   tokens.Role.OFFICER, tokens.Role.ADMIN})  # fmt: skip
NO_STORE = {"Cache-Control": "no-store"}


def link_headers(request: Request, claims: tokens.Claims) -> dict[str, str]:
    """``{"Link": ...}`` for ``claims``' user, or ``{}`` when no server is configured
    (and for node-to-node pulls: the node's own peers use no STUN/TURN)."""
    node = ctx(request)
    servers = node.settings.ice_servers
    if not servers or claims.role is tokens.Role.NODE:
        return {}
    return {"Link": servers.link_header(claims.user, node.clock.time()), **NO_STORE}


async def options_links(request: Request, room: str) -> dict[str, str]:
    """Link headers for an ``OPTIONS`` with a valid Bearer token of the room; ``{}`` for
    one without (a CORS preflight) or with a token refused for any reason: OPTIONS is
    public and always answers 204, only what it reveals depends on the token."""
    if "authorization" not in request.headers:
        return {}
    try:
        claims = await authorize(request, room=room, roles=ROLES)
    except LivecoreError:
        return {}
    return link_headers(request, claims)


async def ice_servers(request: Request) -> Response:
    """``GET /api/rooms/{room}/ice-servers``: the caller's servers and credentials."""
    room = str(request.path_params["room"])
    claims = await authorize(request, room=room, roles=ROLES)
    node = ctx(request)
    now = node.clock.time()
    servers = node.settings.ice_servers
    body: dict[str, object] = {"iceServers": servers.for_user(claims.user, now)}
    if servers.turn:
        body["expires"] = int(now) + servers.ttl_s
        body["ttl"] = servers.ttl_s
    return JSONResponse(body, headers=NO_STORE)
