"""The pages people open (phone-first, static files plus ES modules).

- ``/r/{room}``: the viewer page (a shared link works with no token: guest entry);
- ``/host/{room}``: the host's console (host token in the URL fragment);
- ``/o/{room}``: the share officer's page (referral link, QR code, clips, earnings);
- ``/d/{room}``: the room's live dashboard (实时看板, host or admin token);
- ``/board``: the brand board across rooms (总部大屏, admin token).

Every page, these and the clip, label and package pages, is one shell
(``static/shell.html``: doctype, charset, viewport, theme colour, icon) around
the page's own file (``static/{name}.html``: its title, stylesheets and script,
then its ``<body>``), so a change to the head is made once. In the browser the
pages share one bootstrap the same way (``static/boot.js``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError

STATIC = Path(__file__).resolve().parent.parent / "static"
HTML = "text/html; charset=utf-8"
_META = re.compile(r'<meta name="([\w-]+)"')


@functools.cache
def document(name: str) -> str:
    """The page ``static/{name}.html`` inside the shell ``static/shell.html``.

    The page file is its own head lines, then its ``<body>``. A ``<meta name=…>``
    among them replaces the shell's of that name (the viewer's black theme colour,
    the label sheet's viewport)."""
    shell = (STATIC / "shell.html").read_text(encoding="utf-8")
    head, body = (STATIC / f"{name}.html").read_text(encoding="utf-8").split("<body", 1)
    own = {f'<meta name="{meta}"' for meta in _META.findall(head)}
    kept = [line for line in shell.splitlines(True) if not any(m in line for m in own)]
    return "".join(kept).replace("<!--HEAD-->\n", head).replace("<!--BODY-->\n", "<body" + body)


def page(name: str) -> Response:
    """The page as an answer: HTML, revalidated on every visit (it names its scripts)."""
    return Response(document(name), media_type=HTML, headers={"Cache-Control": "no-cache"})


def _room_page(name: str, request: Request) -> Response:
    room = request.path_params["room"]
    if not tokens.valid_id(room):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "room: not a valid room id")
    return page(name)


async def host_page(request: Request) -> Response:
    """``GET /host/{room}``: the host's console (token in the URL fragment)."""
    return _room_page("host", request)


async def viewer_page(request: Request) -> Response:
    """``GET /r/{room}``: the viewer page."""
    return _room_page("viewer", request)


async def officer_page(request: Request) -> Response:
    """``GET /o/{room}``: the share officer's page."""
    return _room_page("officer", request)


async def dashboard_page(request: Request) -> Response:
    """``GET /d/{room}``: the room's live dashboard."""
    return _room_page("dashboard", request)


async def board_page(request: Request) -> Response:
    """``GET /board``: the brand board."""
    return page("board")


def routes() -> list[Route]:
    return [
        Route("/host/{room}", host_page, methods=["GET"]),
        Route("/r/{room}", viewer_page, methods=["GET"]),
        Route("/o/{room}", officer_page, methods=["GET"]),
        Route("/d/{room}", dashboard_page, methods=["GET"]),
        Route("/board", board_page, methods=["GET"]),
    ]
