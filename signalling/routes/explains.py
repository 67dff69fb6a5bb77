"""HTTP for 讲解 clips: a product's explanation clips ranked by clicks, and a click.

``GET /api/rooms/{room}/explains?product=NAME`` lists the product's
explanation clips (at most ``livecore.store.explains.PER_PRODUCT``), most
clicked first, each with its ``clicks``: the viewer page shows them on the
product card, the share page under the clip. No token (like the clip
library). ``POST /api/clips/{room}~{clip}/click`` counts one product click from
an explanation clip (the shopper went from the clip to the product); limited
per address like every write; ``clip_not_found`` for any other clip.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore.clips import parse_public_id
from livecore.errors import ErrorCode, LivecoreError
from livecore.fields import text
from livecore.store.explains import ExplainStore
from signalling.node.http_boundary import ctx, limit_writes
from signalling.routes.mediafiles import _room, plane


def explains(request: Request) -> ExplainStore:
    return plane(request).explains


async def list_explains(request: Request) -> Response:
    """``GET /api/rooms/{room}/explains?product=NAME``: ranked, public."""
    room = _room(request)
    product = text({"product": request.query_params.get("product")}, "product", 80)
    if await ctx(request).rooms.get(room) is None:
        raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room!r} does not exist")
    ranked = await explains(request).ranked(room, product)
    clips = plane(request).clips
    out = []
    for clip_id, clicks in ranked:
        clip = await clips.get(room, clip_id)
        if clip is not None:
            out.append({**clip.public(), "clicks": clicks})
    return JSONResponse({"product": product, "clips": out})


async def click(request: Request) -> Response:
    """``POST /api/clips/{room}~{clip}/click``: one product click from an explanation clip."""
    value = str(request.path_params["clip"])
    parsed = parse_public_id(value)
    limit_writes(request)
    clip = await plane(request).clips.get(*parsed) if parsed else None
    clicks = None
    if parsed is not None and clip is not None and clip.kind == "explain" and clip.product:
        clicks = await explains(request).click(parsed[0], clip.product, parsed[1])
    if clicks is None:
        raise LivecoreError(ErrorCode.CLIP_NOT_FOUND, f"no explanation clip {value!r}")
    return JSONResponse({"clip": value, "clicks": clicks})
