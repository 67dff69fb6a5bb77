"""For each row of the HTTP role table: the request the matrix sends, what an accepted
one answers, and a probe that shows the refused ones changed nothing."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.http_roles_table import OWNER, forge
from tests.helpers import create_room

WEBHOOK_SECRET = "matrix-webhook-secret-" + "y" * 20
ROOM, BATCH = "mx", "mxb"
#: The room and batch whose state the refused cells of a row would change.
REFUSED_BATCH, REVOKE_TARGET, KEEP_COMMUNITY = "mxb", "rv-target", "mx-keep"
BAD_SDP = "this is no SDP offer\r\n"
PDF = b"%PDF-1.4\n% matrix report\n%%EOF\n"
NO_CLIP, NO_STREAM = "0123456789ab", "1234567890-abcdef"

#: One TLS context for every client (httpx builds one per client otherwise: ~50 ms each).
TLS = ssl.create_default_context()
Probe = Callable[["Env", str], Awaitable[Any]]


@dataclass
class Env:
    """The node's address, the real offers, and a way to read its room offsets."""

    base: str
    offers: dict[str, str]
    offset: Callable[[str, str], Awaitable[int]]

    async def get(self, path: str, **headers: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base, timeout=10, verify=TLS) as http:
            return await http.get(path, headers=headers)


@dataclass(frozen=True)
class Request:
    path: str
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {forge('admin', 'ops', '*')}"}


def as_json(body: object) -> Request:
    return Request("", json.dumps(body).encode(), {"Content-Type": "application/json"})


@dataclass(frozen=True)
class Spec:
    """``scope``: the room or batch a cell acts on (``n`` the cell, ``accepted`` whether
    the table admits it; may set up state); ``build``: the request; ``ok``: an accepted
    cell's answer; ``probe``: read before and after the refused cells."""

    path: str
    ok: tuple[int, str | None] = (200, None)
    build: Callable[[Env, str, int, bool], Request] | None = None
    scope: Callable[[Env, int, bool], Awaitable[str]] | None = None
    probe: Probe | None = None

    async def scope_of(self, env: Env, n: int, accepted: bool) -> str:
        return await self.scope(env, n, accepted) if self.scope else ROOM

    def request(self, env: Env, scope: str, n: int, accepted: bool) -> Request:
        body = self.build(env, scope, n, accepted) if self.build else Request("")
        return Request(self.path.format(scope=scope) + body.path, body.content, body.headers)


# -- scopes: fresh state for accepted cells where it matters ---------------------------


def fixed(value: str) -> Callable[[Env, int, bool], Awaitable[str]]:
    async def scope(env: Env, n: int, accepted: bool) -> str:
        return value

    return scope


def room_per_cell(refused: str) -> Callable[[Env, int, bool], Awaitable[str]]:
    async def scope(env: Env, n: int, accepted: bool) -> str:
        if not accepted:
            return refused
        room = f"{refused}-{n}"
        await make_room(env.base, room)
        return room

    return scope


async def new_room_id(env: Env, n: int, accepted: bool) -> str:
    return f"mr-{n}" if accepted else "mr-refused"


async def new_batch_id(env: Env, n: int, accepted: bool) -> str:
    return f"mxn-{n}" if accepted else "mxn-refused"


async def batch_per_cell(env: Env, n: int, accepted: bool) -> str:
    if not accepted:
        return REFUSED_BATCH
    batch = f"mxe-{n}"
    await post(env.base, "/api/batches", registration(batch), brand())
    return batch


async def community_per_cell(env: Env, n: int, accepted: bool) -> str:
    if not accepted:
        return KEEP_COMMUNITY
    cid = f"mxd-{n}"
    await post(env.base, "/api/communities", community(cid), admin())
    return cid


# -- bodies --------------------------------------------------------------------------


def registration(batch: str) -> dict[str, Any]:
    return {"id": batch, "product": "春茶", "brand": "本味", "origin": "云南",
            "place": {"name": "3号地块", "lat": 21.95, "lng": 100.45}}  # fmt: skip


def community(cid: str) -> dict[str, Any]:
    return {"id": cid, "name": f"小区 {cid}", "lat": 30.1, "lng": 120.1, "radius_m": 300}


def brand() -> dict[str, str]:
    return {"Authorization": f"Bearer {forge('host', OWNER, 'r1')}"}


def offer(kind: str) -> Callable[[Env, str, int, bool], Request]:
    """A real offer for a refused cell (it must not build a peer), a bad one otherwise."""

    def build(env: Env, scope: str, n: int, accepted: bool) -> Request:
        sdp = BAD_SDP if accepted else env.offers[kind]
        return Request("", sdp.encode(), {"Content-Type": "application/sdp"})

    return build


def report(env: Env, scope: str, n: int, accepted: bool) -> Request:
    data = PDF + (f"cell {n}".encode() if accepted else b"refused")
    return Request("", data, {"Content-Type": "application/pdf"})


def static(body: object) -> Callable[[Env, str, int, bool], Request]:
    return lambda env, scope, n, accepted: as_json(body)


def trickle(env: Env, scope: str, n: int, accepted: bool) -> Request:
    """A well-formed trickle PATCH (RFC 9725 §4.3) for a session that does not exist."""
    return Request("", b"a=end-of-candidates\r\n", {
        "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*"})  # fmt: skip


def query(suffix: str) -> Callable[[Env, str, int, bool], Request]:
    return lambda env, scope, n, accepted: Request(suffix)


def planted(env: Env, scope: str, n: int, accepted: bool) -> Request:
    return as_json({"type": "planted", "place": {"name": "3号地块"}, "actor": "岩温",
                    "data": {"crop": "茶"}})  # fmt: skip


# -- probes --------------------------------------------------------------------------


def status(path: str) -> Probe:
    async def probe(env: Env, scope: str) -> Any:
        return (await env.get(path.format(scope=scope), **admin())).status_code

    return probe


def body_of(path: str, *keys: str) -> Probe:
    async def probe(env: Env, scope: str) -> Any:
        answer = await env.get(path.format(scope=scope), **admin())
        value: Any = answer.json()
        for key in keys:
            value = value[key]
        return value

    return probe


async def media_probe(env: Env, scope: str) -> Any:
    """The room's status and the node's media sessions (a refused POST builds none)."""
    text = (await env.get("/metrics")).text
    sessions = [line for line in text.splitlines() if line.startswith("livecore_media_sessions")]
    return (await env.get(f"/api/rooms/{scope}")).json()["status"], sessions


async def revoked_probe(env: Env, scope: str) -> Any:
    token = forge("host", REVOKE_TARGET, ROOM)
    return (
        await env.get(f"/api/rooms/{ROOM}/dashboard", Authorization=f"Bearer {token}")
    ).status_code


async def offset_probe(env: Env, scope: str) -> Any:
    return await env.offset(env.base, scope)


async def community_ids(env: Env, scope: str) -> Any:
    return sorted(c["id"] for c in (await env.get("/api/communities")).json()["communities"])


async def records(env: Env, scope: str) -> Any:
    return len((await env.get(f"/api/batches/{scope}")).json()["records"])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- set-up --------------------------------------------------------------------------


async def post(base: str, path: str, body: object, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=10, verify=TLS) as http:
        answer = await http.post(path, json=body, headers=headers)
    assert answer.status_code in (200, 201), (path, answer.text)
    return answer


async def make_room(base: str, room: str) -> None:
    body = {"id": room, "title": f"Room {room}", "store": "Matrix"}
    await post(base, "/api/rooms", body, admin())


def set_up(base: str, revoked_user: str) -> None:
    """Rooms, a batch with a report, a community, and a revoked user (sync, at start)."""
    for room in (ROOM, "mw", "ms", "mend", "mset"):
        create_room(base, room)
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/api/batches", json=registration(BATCH), headers=brand()).is_success
        up = http.post(f"/api/batches/{BATCH}/reports", content=PDF,
                       headers={**brand(), "Content-Type": "application/pdf"})  # fmt: skip
        assert up.status_code == 201, up.text
        assert http.post("/api/communities", json=community(KEEP_COMMUNITY),
                         headers=admin()).status_code == 201  # fmt: skip
        revoked = http.post("/api/revocations", json={"user": revoked_user}, headers=admin())
        assert revoked.status_code == 201, revoked.text


READING = {"readings": [{"kind": "soil_ph", "value": 6.5}]}
BATCH_READING = {"readings": [{"kind": "cold_chain_c", "value": 4.0}]}
RECEIPT = {"gb": "g1", "group": "c1", "user": "nobody", "outcome": "received"}
PUBLIC_PAGE = (200, None)
MEDIA_404 = (404, "media_not_found")

SPECS: dict[str, Spec] = {
    "GET /healthz": Spec("/healthz"),
    "GET /readyz": Spec("/readyz"),
    "GET /metrics": Spec("/metrics"),
    "POST /api/rooms": Spec("/api/rooms", (201, None), scope=new_room_id,
                            build=lambda env, s, n, a: as_json(
                                {"id": s, "title": "t", "store": "s"}),
                            probe=status("/api/rooms/{scope}")),
    "GET /api/rooms": Spec("/api/rooms"),
    "GET /api/rooms/{room}": Spec("/api/rooms/{scope}"),
    "POST /api/rooms/{room}/end": Spec("/api/rooms/{scope}/end", scope=room_per_cell("mend"),
                                       probe=body_of("/api/rooms/{scope}", "status")),
    "POST /api/revocations": Spec("/api/revocations", (201, None),
                                  build=lambda env, s, n, a: as_json(
                                      {"user": f"rv-{n}" if a else REVOKE_TARGET}),
                                  probe=revoked_probe),
    "POST /api/rooms/{room}/ingest-token": Spec("/api/rooms/{scope}/ingest-token", (201, None)),
    "POST /api/rooms/{room}/sensors": Spec("/api/rooms/{scope}/sensors", (202, None),
                                           scope=fixed("ms"), build=static(READING),
                                           probe=offset_probe),
    "POST /whip/{room}": Spec("/whip/{scope}", (400, "bad_sdp"), scope=fixed("mw"),
                              build=offer("whip"), probe=media_probe),
    "OPTIONS /whip/{room}": Spec("/whip/{scope}", (204, None)),
    "DELETE /whip/{room}/{session}": Spec(f"/whip/{{scope}}/{NO_CLIP}",
                                          (404, "session_not_found")),
    "PATCH /whip/{room}/{session}": Spec(f"/whip/{{scope}}/{NO_CLIP}",
                                         (404, "session_not_found"), build=trickle),
    "OPTIONS /whip/{room}/{session}": Spec(f"/whip/{{scope}}/{NO_CLIP}", (204, None)),
    "POST /whep/{room}": Spec("/whep/{scope}", (400, "bad_sdp"), scope=fixed("mw"),
                              build=offer("whep"), probe=media_probe),
    "OPTIONS /whep/{room}": Spec("/whep/{scope}", (204, None)),
    "DELETE /whep/{room}/{session}": Spec(f"/whep/{{scope}}/{NO_CLIP}",
                                          (404, "session_not_found")),
    "PATCH /whep/{room}/{session}": Spec(f"/whep/{{scope}}/{NO_CLIP}",
                                         (404, "session_not_found"), build=trickle),
    "OPTIONS /whep/{room}/{session}": Spec(f"/whep/{{scope}}/{NO_CLIP}", (204, None)),
    "POST /api/rooms/{room}/receipts": Spec("/api/rooms/{scope}/receipts",
                                            (404, "order_not_found"), build=static(RECEIPT)),
    # The matrix's node runs without --demo: an accepted cell finds no demo shop.
    "POST /api/rooms/{room}/demo/receipts": Spec("/api/rooms/{scope}/demo/receipts",
                                                 (404, "not_found"),
                                                 build=static({"gb": "g1", "group": "c1"})),
    "GET /api/rooms/{room}/orders/dead": Spec("/api/rooms/{scope}/orders/dead"),
    "POST /api/rooms/{room}/orders/redrive": Spec(
        "/api/rooms/{scope}/orders/redrive", probe=body_of("/api/rooms/{scope}/orders/dead")),
    "GET /api/communities": Spec("/api/communities"),
    "POST /api/communities": Spec("/api/communities", (201, None),
                                  build=lambda env, s, n, a: as_json(
                                      community(f"mxc-{n}" if a else "mx-refused")),
                                  probe=community_ids),
    "GET /api/communities/resolve": Spec("/api/communities/resolve",
                                         build=query("?lat=30.1&lng=120.1")),
    "DELETE /api/communities/{community}": Spec("/api/communities/{scope}", (204, None),
                                                scope=community_per_cell, probe=community_ids),
    "GET /api/trace/key": Spec("/api/trace/key"),
    "POST /api/batches": Spec("/api/batches", (201, None),
                              scope=new_batch_id,
                              build=lambda env, s, n, a: as_json(registration(s)),
                              probe=status("/api/batches/{scope}")),
    "GET /api/batches/{batch}": Spec("/api/batches/{scope}", scope=fixed(BATCH)),
    "GET /api/batches/{batch}/chain": Spec("/api/batches/{scope}/chain", scope=fixed(BATCH)),
    "POST /api/batches/{batch}/events": Spec("/api/batches/{scope}/events", (201, None),
                                             scope=batch_per_cell, build=planted,
                                             probe=records),
    "POST /api/batches/{batch}/reports": Spec(
        "/api/batches/{scope}/reports", (201, None), scope=fixed(BATCH), build=report,
        probe=status(f"/api/batches/{{scope}}/reports/{sha(PDF + b'refused')}")),
    "GET /api/batches/{batch}/reports/{sha256}": Spec(f"/api/batches/{{scope}}/reports/{sha(PDF)}",
                                                      scope=fixed(BATCH)),
    "POST /api/batches/{batch}/device-token": Spec("/api/batches/{scope}/device-token",
                                                   (201, None), scope=fixed(BATCH)),
    "POST /api/batches/{batch}/readings": Spec("/api/batches/{scope}/readings", (202, None),
                                               scope=fixed(BATCH), build=static(BATCH_READING),
                                               probe=body_of("/api/batches/{scope}/series")),
    "GET /api/batches/{batch}/series": Spec("/api/batches/{scope}/series", scope=fixed(BATCH)),
    "GET /t/{batch}": Spec("/t/{scope}", scope=fixed(BATCH)),
    "GET /t/{batch}/label": Spec("/t/{scope}/label", scope=fixed(BATCH)),
    "POST /api/rooms/{room}/guest": Spec("/api/rooms/{scope}/guest", build=static({})),
    "GET /api/rooms/{room}/names": Spec("/api/rooms/{scope}/names", build=query("?u=a")),
    "GET /api/rooms/{room}/settings": Spec("/api/rooms/{scope}/settings"),
    "PUT /api/rooms/{room}/settings": Spec("/api/rooms/{scope}/settings",
                                           scope=room_per_cell("mset"),
                                           build=static({"guests": False}),
                                           probe=body_of("/api/rooms/{scope}/settings")),
    "GET /api/rooms/{room}/dashboard": Spec("/api/rooms/{scope}/dashboard"),
    "GET /api/rooms/{room}/testimonials": Spec("/api/rooms/{scope}/testimonials"),
    "GET /api/rooms/{room}/ice-servers": Spec("/api/rooms/{scope}/ice-servers"),
    "GET /api/board": Spec("/api/board"),
    "GET /host/{room}": Spec("/host/{scope}"),
    "GET /r/{room}": Spec("/r/{scope}"),
    "GET /o/{room}": Spec("/o/{scope}"),
    "GET /d/{room}": Spec("/d/{scope}"),
    "GET /board": Spec("/board"),
    "GET /hls/{room}/{playlist}": Spec("/hls/{scope}/master.m3u8", MEDIA_404),
    "GET /hls/{room}/{stream}/{name}": Spec(f"/hls/{{scope}}/{NO_STREAM}/init.mp4", MEDIA_404),
    "GET /replay/{name}": Spec("/replay/{scope}.mp4", MEDIA_404),
    "GET /media/clips/{name}": Spec(f"/media/clips/{{scope}}~{NO_CLIP}.mp4",
                                    (404, "clip_not_found")),
    "GET /api/rooms/{room}/clips": Spec("/api/rooms/{scope}/clips"),
    "DELETE /api/rooms/{room}/clips/{clip}": Spec(f"/api/rooms/{{scope}}/clips/{NO_CLIP}",
                                                  (404, "clip_not_found"),
                                                  probe=body_of("/api/rooms/{scope}/clips")),
    "POST /api/rooms/{room}/mark": Spec("/api/rooms/{scope}/mark", (409, "not_recording")),
    "GET /api/rooms/{room}/groupbuys": Spec("/api/rooms/{scope}/groupbuys"),
    "GET /api/clips/{clip}": Spec(f"/api/clips/{{scope}}~{NO_CLIP}", (404, "clip_not_found")),
    "GET /api/rooms/{room}/explains": Spec("/api/rooms/{scope}/explains?product=%E6%A9%99"),
    "POST /api/clips/{clip}/click": Spec(f"/api/clips/{{scope}}~{NO_CLIP}/click",
                                         (404, "clip_not_found")),
    "GET /c/{clip}": Spec(f"/c/{{scope}}~{NO_CLIP}"),
    "GET /clips/{room}": Spec("/clips/{scope}"),
    "GET /api/rooms/{room}/draws": Spec("/api/rooms/{scope}/draws"),
    "GET /api/rooms/{room}/draws/{draw}": Spec("/api/rooms/{scope}/draws/dnone",
                                               (404, "draw_not_found")),
    "POST /api/rooms/{room}/pickup/code": Spec("/api/rooms/{scope}/pickup/code",
                                               (403, "not_a_buyer"), build=static({"gb": "g1"})),
    "POST /api/rooms/{room}/pickup/redeem": Spec("/api/rooms/{scope}/pickup/redeem",
                                                 (404, "pickup_not_found"),
                                                 build=static({"code": "0000000000"})),
    "GET /p/{room}": Spec("/p/{scope}"),
    "POST /api/rooms/{room}/reservations": Spec(
        "/api/rooms/{scope}/reservations",
        probe=body_of("/api/rooms/{scope}/reservations", "count")),
    "DELETE /api/rooms/{room}/reservations": Spec(
        "/api/rooms/{scope}/reservations",
        probe=body_of("/api/rooms/{scope}/reservations", "count")),
    "GET /api/rooms/{room}/reservations": Spec("/api/rooms/{scope}/reservations"),
    "GET /api/rooms/{room}/calendar.ics": Spec("/api/rooms/{scope}/calendar.ics"),
    "GET /y/{room}": Spec("/y/{scope}"),
}  # fmt: skip
