"""REST for traceability batches: register, append events, reports, chain, key.

Brands (``admin`` tokens, or the ``host`` who registered the batch) write;
everyone reads. See docs/protocol.md (Traceability).
"""

from __future__ import annotations

import base64
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.store.trace import MAX_REPORT_BYTES
from livecore.trace import card, events
from signalling.node.http_boundary import authorize, ctx, limit_writes, read_body, read_json
from signalling.routes.trace.service import TraceService, service

BRAND_ROLES = frozenset({tokens.Role.ADMIN, tokens.Role.HOST})
_SHA = re.compile(r"^[0-9a-f]{64}$")


def batch_id(request: Request) -> str:
    batch: str = request.path_params["batch"]
    if not tokens.valid_id(batch):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "batch: 1-64 of A-Z a-z 0-9 _ . : -")
    return batch


async def owner_check(request: Request, svc: TraceService, batch: str) -> tokens.Claims:
    """A brand token; a host only for the batches it registered."""
    claims = await authorize(request, room=None, roles=BRAND_ROLES)
    if claims.batch is not None:
        raise LivecoreError(ErrorCode.TOKEN_WRONG_BATCH, "a device token only posts readings")
    found = await svc.batches.head(batch)
    if found is None:
        raise LivecoreError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch!r}")
    if claims.role is tokens.Role.HOST and found[1] != claims.user:
        raise LivecoreError(
            ErrorCode.NOT_BATCH_OWNER, f"batch {batch!r} was registered by another brand"
        )
    return claims


async def register(request: Request) -> Response:
    """``POST /api/batches``: record 0 of a new chain; 201 with the batch."""
    limit_writes(request)
    claims = await authorize(request, room=None, roles=BRAND_ROLES)
    if claims.batch is not None:
        raise LivecoreError(ErrorCode.TOKEN_WRONG_BATCH, "a device token only posts readings")
    svc, now = service(request), ctx(request).clock.time()
    batch, record = events.parse_registration(await read_json(request), now=now)
    linked = await svc.batches.register(batch, record, owner=claims.user, now=int(now))
    found = await svc.batches.head(batch)
    assert found is not None
    body = {"batch": events.summary([linked]), "record": linked, "head": found[0].to_dict()}
    return JSONResponse(body, status_code=201, headers={"Location": f"/api/batches/{batch}"})


async def append(request: Request) -> Response:
    """``POST /api/batches/{batch}/events``: one life event; 201 with the record and head."""
    limit_writes(request)
    batch, svc = batch_id(request), service(request)
    await owner_check(request, svc, batch)
    now = ctx(request).clock.time()
    record = events.parse_event(await read_json(request), now=now)
    linked = await svc.batches.append(batch, record, now=int(now))
    found = await svc.batches.head(batch)
    assert found is not None
    return JSONResponse({"record": linked, "head": found[0].to_dict()}, status_code=201)


async def upload_report(request: Request) -> Response:
    """``POST /api/batches/{batch}/reports``: a test report (PDF, PNG or JPEG, ≤ 1 MiB)."""
    limit_writes(request)
    batch, svc = batch_id(request), service(request)
    await owner_check(request, svc, batch)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    data = await read_body(request, MAX_REPORT_BYTES)
    meta = await svc.batches.put_report(batch, data, ctype)
    url = card.report_path(batch, meta["sha256"])
    return JSONResponse({**meta, "url": url}, status_code=201, headers={"Location": url})


#: The file name's extension of each report type.
_EXT = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}


async def get_report(request: Request) -> Response:
    """``GET /api/batches/{batch}/reports/{sha256}``: the file, named by its hash."""
    batch, sha = batch_id(request), request.path_params["sha256"]
    if not _SHA.match(sha):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "sha256: 64 lowercase hex")
    found = await service(request).batches.report(batch, sha)
    if found is None:
        raise LivecoreError(ErrorCode.REPORT_NOT_FOUND, f"no report {sha} in batch {batch!r}")
    data, meta = found
    digest = base64.b64encode(bytes.fromhex(sha)).decode()
    name = f"report-{sha[:12]}{_EXT.get(meta['type'], '')}"
    headers = {
        "ETag": f'"{sha}"',
        "Repr-Digest": f"sha-256=:{digest}:",
        "Cache-Control": "public, max-age=31536000, immutable",
        # An upload is never shown as a page of our origin: saved, not rendered, and
        # sandboxed should a browser render it anyway (with nosniff on every answer).
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    return Response(data, media_type=meta["type"], headers=headers)


async def get_batch(request: Request) -> Response:
    """``GET /api/batches/{batch}``: summary, events, signed head, series, rooms."""
    batch = batch_id(request)
    view = await service(request).overview(batch)
    view["url"] = ctx(request).settings.base_url + card.page_path(batch)
    return JSONResponse(view)


async def get_chain(request: Request) -> Response:
    """``GET /api/batches/{batch}/chain``: everything an offline verifier needs."""
    batch, svc = batch_id(request), service(request)
    records, head, _ = await svc.batches.chain(batch)
    body = {
        "batch": batch,
        "canonical": "RFC 8785 (JCS)",
        "hash": "SHA-256",
        "signature": "Ed25519",
        "genesis": "0" * 64,
        "records": records,
        "head": head.to_dict(),
        "key": svc.jwk(),
    }
    return JSONResponse(body)


async def get_key(request: Request) -> Response:
    """``GET /api/trace/key``: the public key chain heads are signed with."""
    return JSONResponse({"alg": "Ed25519", "keys": [service(request).jwk()]})
