"""Security headers on every HTTP answer of a node: pages, API, media files, errors.

- ``Content-Security-Policy``: the pages load only their own scripts, styles,
  images and connections (the room channel's websocket is same-origin, which
  ``'self'`` covers); no inline script or style, no ``eval``, no plugin, no
  ``<base>``; ``frame-ancestors 'none'`` (no page may be framed: a framed host
  console is a clickjacking target). A page that inlines its parts (the
  traceability page, saved and opened offline) sets its own policy with the
  hashes of what it inlines; an answer's own policy is left alone.
- ``X-Content-Type-Options: nosniff``: a file is what its type says (an
  uploaded report never runs as a script or a page).
- ``Referrer-Policy: no-referrer``: a page's address (room, clip) is not sent
  to anyone it links to.
- ``X-Frame-Options: DENY``: ``frame-ancestors`` for browsers without CSP 2.
- ``Strict-Transport-Security`` when the request came over TLS.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Images include ``data:`` and ``blob:`` (QR codes, thumbnails drawn on a canvas);
#: media include ``blob:`` (HLS through Media Source Extensions).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "font-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Adds the headers above to every HTTP answer (a header the endpoint set wins)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", CSP)
                if tls:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, with_headers)
