"""A WHIP/WHEP session resource answered on any node: passed to the node holding it.

A session lives in the memory of the node (or worker of ``serve --workers``)
whose POST created it, but its ``PATCH`` (trickle ICE, ICE restart) and
``DELETE`` may land anywhere: on another node behind a load balancer with no
stickiness, on a sibling worker sharing the port. So the resource's last path
segment names its holder — ``<session>.<node id as hex>`` — and a node that
does not hold it passes the request, as it came (method, body, ``Authorization``,
``If-Match``, ``Content-Type``), to the holder's node-to-node URL (registered in
Valkey, :mod:`livecore.store.nodes`) and returns the holder's answer (status,
body, ``ETag``, ``Content-Type``). The holder checks the token itself, as for
any request. Only a request naming another node is passed on, and the holder is
that node, so a request hops at most once.

A holder that is gone (its registration lapsed) is ``404 session_not_found``:
its sessions died with it.
"""

from __future__ import annotations

import binascii

import httpx
from starlette.requests import Request
from starlette.responses import Response

from livecore.errors import ErrorCode, LivecoreError
from signalling.node.http_boundary import ctx, read_body

#: Request headers passed to the holder, and answer headers passed back.
ASKED = ("authorization", "if-match", "content-type")
ANSWERED = ("etag", "content-type", "retry-after")
HOP_TIMEOUT_S = 10.0


def resource_id(session_id: str, node_id: str) -> str:
    """The last path segment of a session's ``Location``."""
    return f"{session_id}.{node_id.encode().hex()}"


def holder(resource: str) -> tuple[str, str | None]:
    """(session id, the holding node's id) of a resource segment; a segment without a
    holder (as this node answered before) is taken to be this node's."""
    session_id, dot, node_hex = resource.partition(".")
    if not dot:
        return session_id, None
    try:
        return session_id, binascii.unhexlify(node_hex).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise LivecoreError(ErrorCode.SESSION_NOT_FOUND, "no such session") from None


async def pass_on(request: Request, node_id: str, max_body: int) -> Response:
    """``request`` answered by ``node_id``, the session's holder (see the module doc);
    a body over ``max_body`` bytes is refused here, as the holder would."""
    url = await ctx(request).stores.nodes.url(node_id)
    if url is None:
        raise LivecoreError(ErrorCode.SESSION_NOT_FOUND, "the node holding the session is gone")
    headers = {k: v for k in ASKED if (v := request.headers.get(k)) is not None}
    body = await read_body(request, max_body)
    try:
        async with httpx.AsyncClient(timeout=HOP_TIMEOUT_S) as client:
            answer = await client.request(
                request.method, f"{url}{request.url.path}", content=body, headers=headers
            )
    except httpx.HTTPError:
        raise LivecoreError(
            ErrorCode.SESSION_NOT_FOUND, "the node holding the session does not answer"
        ) from None
    passed = {k: v for k in ANSWERED if (v := answer.headers.get(k)) is not None}
    return Response(answer.content, status_code=answer.status_code, headers=passed)
