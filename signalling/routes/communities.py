"""REST for the community registry: anyone reads and resolves, admins manage."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.communities import parse_community
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.communities import CommunityStore
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_json

ADMIN = frozenset({tokens.Role.ADMIN})
MAX_BATCH = 1000


def _store(request: Request) -> CommunityStore:
    return ctx(request).stores.communities


async def list_communities(request: Request) -> Response:
    """``GET /api/communities``: every community of the registry."""
    index = await _store(request).refresh()
    items = sorted(index.by_id.values(), key=lambda c: c.id)
    return JSONResponse({"communities": [c.public() for c in items]})


async def resolve(request: Request) -> Response:
    """``GET /api/communities/resolve?lat=..&lng=..``: the community there, or nearby ones."""
    try:
        lat, lng = float(request.query_params["lat"]), float(request.query_params["lng"])
    except (KeyError, ValueError):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "lat, lng: numbers required") from None
    found, nearby = (await _store(request).refresh()).resolve(lat, lng)
    return JSONResponse(
        {"community": found.public() if found else None, "nearby": [c.public() for c in nearby]}
    )


async def upsert(request: Request) -> Response:
    """``POST /api/communities`` (admin): one community, or ``{"communities": [...]}``."""
    limit_writes(request)
    await authorize(request, room=None, roles=ADMIN)
    body = await read_json(request, limit=1024 * 1024)
    rows = body.get("communities") if isinstance(body, dict) and "communities" in body else [body]
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"communities: 1-{MAX_BATCH} items")
    parsed = [parse_community(row) for row in rows]
    await _store(request).upsert(parsed)
    return JSONResponse({"stored": [c.id for c in parsed]}, status_code=201)


async def delete(request: Request) -> Response:
    """``DELETE /api/communities/{id}`` (admin)."""
    limit_writes(request)
    await authorize(request, room=None, roles=ADMIN)
    if not await _store(request).delete(request.path_params["community"]):
        raise LivecoreError(ErrorCode.UNKNOWN_COMMUNITY, "no such community")
    return Response(status_code=204)
