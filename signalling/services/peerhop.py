"""One node asking another on a caller's behalf (a hop): the node token it carries, the
one HTTP client all hops share, and WHIP/WHEP session requests passed on to the node
that holds the session (:func:`pass_on`; media files: :mod:`.medialookup`).

A WHIP/WHEP session lives in the memory of the node (or ``serve --workers``
worker) whose POST created it; its resource's last path segment names that node
(:func:`resource_id`: ``<session>.<node id as hex>``), so any node knows where to
pass a ``PATCH`` or ``DELETE`` without asking the store, and nothing is left
behind when a node dies.

A hop carries ``X-Livecore-Node-Token``: a token of role ``node`` for the room,
a minute long, minted by the asking node. The node asked answers from what it
holds itself and never hops again (no loops); a token that does not verify is
refused with its ``token_*`` code. Hops go to the other node's node-to-node
URL (``--node-url``, :mod:`livecore.store.nodes`).
"""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response

from livecore import tokens
from signalling.node.context import NodeContext

HEADER = "x-livecore-node-token"
#: Lifetime of a hop's token (used at once).
TOKEN_TTL_S = 60
#: Connections to other nodes at once; more hops wait up to the pool timeout.
MAX_CONNECTIONS = 64


def token(ctx: NodeContext, room: str) -> str:
    """This node's credential for one hop about ``room``."""
    user = "node-" + "".join(c if tokens.valid_id(c) else "-" for c in ctx.settings.node_id)
    return tokens.mint(ctx.ring, role=tokens.Role.NODE, room=room, user=user[:64],
                       ttl_s=TOKEN_TTL_S, now=ctx.clock.time())  # fmt: skip


def verify(ctx: NodeContext, request: Request, room: str) -> bool:
    """Whether ``request`` is another node's hop about ``room`` (raises on a bad token)."""
    value = request.headers.get(HEADER)
    if value is None:
        return False
    tokens.verify(ctx.ring, value, now=ctx.clock.time(), room=room,
                  roles=frozenset({tokens.Role.NODE}))  # fmt: skip
    return True


class Hops:
    """The shared client (created on first use, closed with the app)."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(10.0, connect=2.0, pool=2.0),
                limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            )  # fmt: skip
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


#: Headers of a session request passed on to the node holding the session, and of its
#: answer passed back.
ASKED = ("authorization", "content-type", "if-match")
ANSWERED = ("content-type", "etag", "link")


def resource_id(session_id: str, node_id: str) -> str:
    """The last path segment of a session's ``Location``: it names its node."""
    return f"{session_id}.{node_id.encode().hex()}"


def session_of(resource: str) -> tuple[str, str | None]:
    """(session id, the holding node's id) of a resource's last segment; None for a
    segment that names no node (or not as hex): this node answers it, and it is
    ``session_not_found`` unless it holds that session."""
    session_id, dot, node_hex = resource.partition(".")
    if not dot:
        return session_id, None
    try:
        return session_id, bytes.fromhex(node_hex).decode()
    except (ValueError, UnicodeDecodeError):
        return resource, None


async def pass_on(
    ctx: NodeContext, hops: Hops, request: Request, room: str, holder: str, body: bytes
) -> Response | None:
    """A WHIP/WHEP session request (``PATCH``, ``DELETE``) for a session ``holder``
    (another node) holds, passed on to it as it came (the caller's token checked there
    again); None when that node is not live (the caller then gets this node's own
    ``session_not_found``), or this request is itself a hop."""
    if verify(ctx, request, room):
        return None
    url = await ctx.stores.nodes.url(holder)
    if url is None:
        return None
    headers = {k: request.headers[k] for k in ASKED if k in request.headers}
    headers[HEADER] = token(ctx, room)
    try:
        answer = await hops.client().request(
            request.method, f"{url}{request.url.path}", content=body, headers=headers
        )
    except httpx.HTTPError:
        return None
    passed = {k: v for k, v in answer.headers.items() if k.lower() in ANSWERED}
    return Response(answer.content, status_code=answer.status_code, headers=passed)
