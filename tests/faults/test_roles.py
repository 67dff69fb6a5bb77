"""The role x action matrix, generated from one table: docs/protocol.md's
client-message table. It fails when the docs and the server's routing disagree,
and a real node is driven through every cell (allowed or token_wrong_role), and
through every kind of bad credential at hello."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jwt
import msgpack
import pytest
import websockets

from livecore import wire
from livecore.tokens import Role
from signalling.hub import routes
from tests.helpers import ROOT, Node, token
from tests.signalling.hub.test_bad_input import PROTO, closed_with, joined, next_reply, ws_url

JOINING = (Role.HOST, Role.KOC, Role.VIEWER, Role.OFFICER)


def documented_roles() -> dict[str, frozenset[Role]]:
    """Message type -> roles, from the 'Client → server' table of docs/protocol.md."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split("### Client → server", 1)[1].split("\n### ", 1)[0]
    table: dict[str, frozenset[Role]] = {}
    for kind, who in re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, flags=re.M):
        if kind == "t":  # the header row
            continue
        if "all roles in the room" in who:
            who = "host, koc, viewer, officer"
        names = re.findall(r"\b(host|koc|viewer|officer|admin|device|node)\b", who)
        table[kind] = frozenset(Role(n) for n in names)
    return table


def test_docs_and_routes_agree() -> None:
    """Every message type's roles in the docs are exactly the roles the router admits."""
    docs = documented_roles()
    served = {t.value: roles for t, (roles, _) in routes.ROUTES.items()}
    assert docs == served


MATRIX = [(t, role) for t in routes.ROUTES for role in JOINING]
#: Minimal valid fields per type (so a refusal is the role check, not the fields).
FIELDS: dict[str, dict[str, Any]] = {
    "token": {"token": "x"}, "comment": {"text": "hi"}, "like": {"n": 1},
    "vote": {"poll": "p1", "option": 0}, "poll_open": {"question": "q", "options": ["a", "b"]},
    "poll_close": {"poll": "p1"}, "delete_comment": {"offset": 1},
    "mute": {"user": "x", "duration_s": 60}, "pin_question": {"offset": 1},
    "answer_question": {"offset": 1}, "card": {"kind": "testimonial", "author": "a", "text": "t"},
    "locate": {"lat": 30.0, "lng": 120.0}, "choose_community": {"community": "c1"},
    "groupbuy_open": {"product": "p", "price_cents": 1, "target": 2, "duration_s": 60},
    "groupbuy_join": {"gb": "g1", "qty": 1}, "groupbuy_leave": {"gb": "g1"},
    "commission_set": {"level1_bp": 100, "level2_bp": 50}, "costream_accept": {"user": "k"},
    "costream_decline": {"user": "k"}, "costream_end": {"user": "k"},
    "batch_pin": {"batch": "b1"}, "batch_unpin": {"batch": "b1"},
    "draw_open": {"prize": "p", "winners": 1, "duration_s": 60}, "draw_enter": {"draw": "d1"},
    "draw_roll": {"draw": "d1"},
    "flash_start": {"price_cents": 990, "stock": 5, "duration_s": 60}, "flash_stop": {"fs": "f1"},
    "flash_buy": {"fs": "f1"}, "coupon_create": {"title": "t", "off_cents": 100, "quota": 5},
    "coupon_claim": {"cp": "c1"},
}  # fmt: skip


async def test_every_cell_of_the_matrix(hub_node: Node) -> None:
    """Each role sends each message: refused token_wrong_role exactly where the table
    says the role may not send it."""
    sockets = {role: await joined(hub_node, role.value, f"m-{role.value}") for role in JOINING}
    sent = dict.fromkeys(JOINING, 0)
    for n, (mtype, role) in enumerate(MATRIX):
        if sent[role] == 15:  # a fresh socket before 20 refusals close it (4029)
            await sockets[role].close()
            sockets[role] = await joined(hub_node, role.value, f"m-{role.value}")
            sent[role] = 0
        sent[role] += 1
        ws = sockets[role]
        fields = dict(FIELDS.get(mtype.value, {}))
        if mtype is wire.ClientType.COSTREAM_END:
            fields["user"] = f"m-{role.value}"  # its own co-stream (a KOC may end only that)
        await ws.send(msgpack.packb({"t": mtype.value, "id": n, **fields}))
        reply = await next_reply(ws)
        allowed = role in routes.ROUTES[mtype][0]
        wrong_role = reply["t"] == "error" and reply["code"] == "token_wrong_role"
        if mtype is wire.ClientType.TOKEN and allowed:
            wrong_role = wrong_role and "same user" not in reply["message"]
        assert wrong_role != allowed, (mtype.value, role.value, reply)
    for ws in sockets.values():
        await ws.close()


def _forged(kid: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "livecore", "sub": "u", "role": "viewer", "room": "r1", "iat": now,
               "exp": now + 600}  # fmt: skip
    from tests.helpers import TEST_SECRET

    headers = {"kid": kid} if kid is not None else None
    return jwt.encode({**payload, **claims}, TEST_SECRET, algorithm="HS256", headers=headers)


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("none", lambda: "", "token_malformed"),
        ("expired", lambda: token("viewer", "u", ttl=1, now=1_000_000_000), "token_expired"),
        ("other-room", lambda: token("viewer", "u", room="r2"), "token_wrong_room"),
        ("any-room-viewer", lambda: _forged(room="*"), "token_wrong_room"),
        ("admin", lambda: token("admin", "ops", room="*"), "token_wrong_role"),
        ("device", lambda: token("device", "probe"), "token_wrong_role"),
        ("node", lambda: token("node", "node-a", ttl=60), "token_wrong_role"),
        ("over-long", lambda: _forged(exp=int(time.time()) + 400 * 86400), "token_lifetime"),
        ("no-iat-far-exp", lambda: _forged(iat=None, exp=2**31), "token_lifetime"),
        ("unknown-kid", lambda: _forged(kid="retired-key"), "token_unknown_key"),
        ("future-nbf", lambda: _forged(nbf=2**31 - 10), "token_not_yet_valid"),
        ("other-secret", lambda: jwt.encode({"iss": "livecore", "sub": "u", "role": "viewer",
                                     "room": "r1", "exp": 2**31}, "x" * 40, algorithm="HS256"),
         "token_bad_signature"),
    ],
)  # fmt: skip
async def test_bad_credentials_do_not_join(
    hub_node: Node, name: str, value: Callable[[], str], code: str
) -> None:
    """Each kind of bad credential is closed 4001 naming its token error (each made when
    its test runs: a token made at collection may have expired by then)."""
    ws = await websockets.connect(ws_url(hub_node), subprotocols=PROTO)
    await ws.send(msgpack.packb({"t": "hello", "token": value() or "x"}))
    closed, reason = await closed_with(ws)
    assert closed == 4001 and reason.startswith(code), (name, reason)
