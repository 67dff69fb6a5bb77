"""The package page ``/t/{batch}`` and its printable label sheet.

The page is one document: styles, uPlot and the verifier (as ``data:``
modules named in an import map, so trace.js imports them by their usual
paths), the page script and the batch's data are inlined, and the whole is
gzip-compressed. On a phone network every request costs a round trip
(~560 ms on "Fast 3G"), so the page is drawn and verified after exactly one.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from livecore.errors import LivecoreError
from livecore.trace import card
from signalling.node.headers import CSP
from signalling.node.http_boundary import ctx
from signalling.routes.pages import document, page
from signalling.routes.trace.batches import batch_id
from signalling.routes.trace.service import service

STATIC = Path(__file__).resolve().parents[2] / "static"
#: Chart points per series on the page (a phone is ~390 px wide).
PAGE_POINTS = 160


def _data_url(source: str) -> str:
    """A JS module as a ``data:`` URL: only what the URL parser would change is escaped."""
    escaped = (
        source.replace("%", "%25").replace("#", "%23").replace("\n", "%0A")
        .replace("\r", "%0D").replace("\t", "%09")
    )  # fmt: skip
    return "data:text/javascript;charset=utf-8," + escaped


def _json_in_html(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no comment openers)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    """A CSP source for an inline element holding ``text`` (CSP3 §8.4: its SHA-256)."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


@functools.cache
def _shell() -> tuple[str, str, str]:
    """The page with styles, import map and script inlined, split where the data goes,
    and its Content-Security-Policy: the hashes of what it inlines (the data block is
    JSON, never run), its modules as ``data:`` URLs (so a saved page works offline)."""
    imports = {
        "/static/vendor/uplot.js": _data_url(read("vendor/uplot.js")),
        "/static/trace-verify.js": _data_url(read("trace-verify.js")),
        "/static/boot.js": _data_url(read("boot.js")),
    }
    style, importmap, script = (
        read("vendor/uplot.css") + read("trace.css"), _json_in_html({"imports": imports}),
        read("trace.js"),
    )  # fmt: skip
    html = document("trace")
    html = html.replace("/*STYLE*/", style)
    html = html.replace("<!--IMPORTMAP-->", f'<script type="importmap">{importmap}</script>')
    html = html.replace("/*SCRIPT*/", script)
    before, after = html.split("/*DATA*/")
    policy = CSP.replace(
        "script-src 'self'", f"script-src 'self' {_hash(importmap)} {_hash(script)} data:"
    )
    policy = policy.replace("style-src 'self'", f"style-src {_hash(style)}")
    return before, after, policy


#: Rooms of a batch whose titles the page shows (the newest links are what matter).
MAX_ROOM_TITLES = 10


async def _room_titles(request: Request, rooms: list[str]) -> dict[str, str]:
    """``{room: title}`` for the page's "在直播间购买" links (ids of gone rooms stay ids)."""
    titles: dict[str, str] = {}
    for room_id in rooms[:MAX_ROOM_TITLES]:
        room = await ctx(request).rooms.get(room_id)
        if room is not None:
            titles[room_id] = room.title
    return titles


async def page_data(request: Request, batch: str) -> dict[str, Any] | None:
    svc = service(request)
    try:
        view = await svc.overview(batch)
    except LivecoreError:
        return None
    charts = await svc.charts(batch, PAGE_POINTS, raw=False)  # life-long aggregates only
    return {
        "batch": view["batch"],
        "records": view["records"],
        "head": view["head"],
        "key": view["key"],
        "rooms": view["rooms"],
        "room_titles": await _room_titles(request, view["rooms"]),
        "series": charts,
        "url": ctx(request).settings.base_url + card.page_path(batch),
    }


async def trace_page(request: Request) -> Response:
    """``GET /t/{batch}``: the shopper's page (404 with the same page, saying so)."""
    batch = batch_id(request)
    data = await page_data(request, batch)
    before, after, policy = _shell()
    body = (before + _json_in_html(data or {"batch": None}) + after).encode()
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding",
               "Content-Security-Policy": policy}  # fmt: skip
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return Response(
        body, status_code=200 if data else 404, media_type="text/html; charset=utf-8",
        headers=headers,
    )  # fmt: skip


async def label_page(request: Request) -> Response:
    """``GET /t/{batch}/label``: a printable sheet of QR labels for the batch."""
    batch_id(request)
    return page("label")
