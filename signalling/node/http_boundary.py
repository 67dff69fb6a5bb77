"""Helpers at the HTTP boundary: JSON errors, bounded bodies, token checks."""

from __future__ import annotations

import json
import logging
import math
from typing import Any, NoReturn

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.ratelimit import CallerLimiter
from signalling.node.context import NodeContext

log = logging.getLogger("livecore.http")

#: Largest JSON body any REST endpoint reads.
MAX_JSON_BODY = 16 * 1024


def ctx(request: Request) -> NodeContext:
    node: NodeContext = request.app.state.ctx
    return node


def error_response(err: LivecoreError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(err.to_dict(), status_code=err.http_status, headers=headers)


async def on_livecore_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivecoreError)
    request.app.state.ctx.metrics.errors.labels(exc.code.value).inc()
    headers = None
    if exc.code is ErrorCode.RATE_LIMITED:
        # RFC 9110 §10.2.3: whole seconds; at least 1, so a client never spins.
        wait = exc.retry_after_s if exc.retry_after_s is not None else 1.0
        headers = {"Retry-After": str(max(1, math.ceil(min(wait, 3600.0))))}
    elif exc.code is ErrorCode.NODE_FULL:
        wait = exc.retry_after_s if exc.retry_after_s is not None else 5.0
        headers = {"Retry-After": str(max(1, math.ceil(min(wait, 3600.0))))}
    return error_response(exc, headers)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.BAD_REQUEST
    )
    message = {
        ErrorCode.NOT_FOUND: f"no such endpoint: {request.url.path}",
        ErrorCode.METHOD_NOT_ALLOWED: f"{request.method} is not allowed on {request.url.path}",
    }.get(code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return JSONResponse(
        {"code": code.value, "message": message}, status_code=exc.status_code, headers=headers
    )


def allowed_methods(request: Request) -> str:
    """Every method some route of this path answers (the ``Allow`` of a 405, RFC 9110)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is Match.NONE or not isinstance(route, Route):
            continue
        methods |= set(route.methods or ())
    methods.discard("HEAD")
    return ", ".join(sorted(methods))


async def on_store_error(request: Request, exc: Exception) -> Response:
    """Valkey/Redis unreachable: 503 ``store_unavailable`` (the caller may retry)."""
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, exc)
    request.app.state.ctx.metrics.errors.labels(ErrorCode.STORE_UNAVAILABLE.value).inc()
    err = LivecoreError(ErrorCode.STORE_UNAVAILABLE, "the store is unavailable; retry shortly")
    return error_response(err, {"Retry-After": "2"})


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    err = LivecoreError(ErrorCode.INTERNAL, "internal error; the server log has the details")
    return error_response(err)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with ``body_too_large`` past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise LivecoreError(ErrorCode.BODY_TOO_LARGE, f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise LivecoreError(ErrorCode.BODY_TOO_LARGE, f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_content_type(request: Request, expected: str) -> None:
    """Refuse with ``unsupported_media_type`` unless the body is ``expected``."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != expected:
        raise LivecoreError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type must be {expected}, got {ctype or 'nothing'}",
        )


async def read_json(request: Request, limit: int = MAX_JSON_BODY) -> Any:
    """A JSON body of at most ``limit`` bytes with ``Content-Type: application/json``."""
    require_content_type(request, "application/json")
    raw = await read_body(request, limit)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LivecoreError(ErrorCode.BAD_REQUEST, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise LivecoreError(ErrorCode.BAD_REQUEST, "body is nested too deeply") from None


async def authorize(
    request: Request, *, room: str | None, roles: frozenset[tokens.Role] | None
) -> tokens.Claims:
    """Verify the Bearer token for ``room`` and ``roles`` (raises LivecoreError).

    ``room`` None is an action on no one room (the community registry,
    revocations, the brand board, batches): there a ``*`` token is honoured for
    admins only, and an admin token must be a ``*`` one (an admin of one room is
    no admin of the node). A revoked token (its ``jti`` or its user) is refused
    ``token_revoked``, as at ``hello``.
    """
    node = ctx(request)
    token = tokens.bearer(request.headers.get("authorization"))
    claims = tokens.verify(node.ring, token, now=node.clock.time(), room=room, roles=roles)
    if room is None and (claims.room == tokens.ANY_ROOM) != (claims.role is tokens.Role.ADMIN):
        message = (
            f"a {claims.role.value} token for any room ('*') is valid nowhere"
            if claims.room == tokens.ANY_ROOM
            else f"an admin token for room {claims.room!r} acts in that room only"
        )
        raise LivecoreError(ErrorCode.TOKEN_WRONG_ROOM, message)
    if await node.stores.revocations.is_revoked(claims):
        raise LivecoreError(ErrorCode.TOKEN_REVOKED, "this token (or its user) was revoked")
    request.state.claims = claims
    if getattr(request.state, "write_pending", False):  # limit_writes came first
        request.state.write_pending = False
        take(request, node.http_writes, "http_writes", caller=claims.user)
    return claims


def client_key(request: Request) -> str:
    """The address a request came from (rate-limit key)."""
    return request.client.host if request.client else "unknown"


def take(
    request: Request,
    limiter: CallerLimiter,
    name: str,
    *,
    caller: str | None = None,
    address: str | None = None,
) -> None:
    """Spend a token of ``caller`` and of ``address`` in ``limiter`` (see
    ``CallerLimiter.take``), or refuse ``rate_limited`` with ``Retry-After``; a
    refusal is counted in ``livecore_refusals_total{limit="<name>_<bucket>"}``."""
    refusal = limiter.take(caller=caller, address=address)
    if refusal is not None:
        refuse(request, f"{name}_{refusal.bucket}", refusal.retry_after_s)


def refuse(request: Request, limit: str, retry_after_s: float) -> NoReturn:
    ctx(request).metrics.refusals.labels(limit).inc()
    wait = max(1, math.ceil(retry_after_s))
    raise LivecoreError(
        ErrorCode.RATE_LIMITED, f"too many requests; retry in {wait} s", retry_after_s=wait
    )


def limit_writes(request: Request) -> None:
    """Spend one HTTP write of the caller's address now (a flood is refused before any
    token is read) and one of the caller's own, keyed on its verified token's user:
    now if ``authorize`` already ran, else when it does. A write without a token
    (the signed orders webhook) has the address limit only. Refuses ``rate_limited``."""
    claims: tokens.Claims | None = getattr(request.state, "claims", None)
    node = ctx(request)
    caller = claims.user if claims is not None else None
    take(request, node.http_writes, "http_writes", caller=caller, address=client_key(request))
    if claims is None:
        request.state.write_pending = True
