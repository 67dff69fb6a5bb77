"""The pages people open: host console and viewer page (mobile-first, static)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError

STATIC = Path(__file__).parent / "static"


def _page(name: str, request: Request) -> Response:
    room = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8")


async def host_page(request: Request) -> Response:
    """``GET /host/{room}``: the host's console (token in the URL fragment)."""
    return _page("host.html", request)


async def viewer_page(request: Request) -> Response:
    """``GET /r/{room}``: the viewer page."""
    return _page("viewer.html", request)
