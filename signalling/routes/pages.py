"""The pages people open (phone-first, static files plus ES modules).

- ``/r/{room}``: the viewer page (a shared link works with no token: guest entry);
- ``/host/{room}``: the host's console (host token in the URL fragment);
- ``/o/{room}``: the share officer's page (referral link, QR code, clips, earnings);
- ``/d/{room}``: the room's live dashboard (实时看板, host or admin token);
- ``/board``: the brand board across rooms (总部大屏, admin token).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError

STATIC = Path(__file__).resolve().parent.parent / "static"
HTML = "text/html; charset=utf-8"


def _page(name: str, request: Request) -> Response:
    room = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return FileResponse(STATIC / name, media_type=HTML, headers={"Cache-Control": "no-cache"})


async def host_page(request: Request) -> Response:
    """``GET /host/{room}``: the host's console (token in the URL fragment)."""
    return _page("host.html", request)


async def viewer_page(request: Request) -> Response:
    """``GET /r/{room}``: the viewer page."""
    return _page("viewer.html", request)


async def officer_page(request: Request) -> Response:
    """``GET /o/{room}``: the share officer's page."""
    return _page("officer.html", request)


async def dashboard_page(request: Request) -> Response:
    """``GET /d/{room}``: the room's live dashboard."""
    return _page("dashboard.html", request)


async def board_page(request: Request) -> Response:
    """``GET /board``: the brand board."""
    headers = {"Cache-Control": "no-cache"}
    return FileResponse(STATIC / "board.html", media_type=HTML, headers=headers)


def routes() -> list[Route]:
    return [
        Route("/host/{room}", host_page, methods=["GET"]),
        Route("/r/{room}", viewer_page, methods=["GET"]),
        Route("/o/{room}", officer_page, methods=["GET"]),
        Route("/d/{room}", dashboard_page, methods=["GET"]),
        Route("/board", board_page, methods=["GET"]),
    ]
