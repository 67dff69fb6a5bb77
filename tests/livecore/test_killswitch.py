"""Kill notices: what they hit, and their wire form (junk is ignored)."""

from __future__ import annotations

import msgpack

from livecore import killswitch
from livecore.killswitch import Kill
from livecore.tokens import Claims, Role

HOST = Claims(Role.HOST, "r1", "h1", 2_000, token_id="j1", issued_at=1_000)
VIEWER = Claims(Role.VIEWER, "r1", "v1", 2_000, token_id="j2", issued_at=1_000)


def test_what_a_notice_hits() -> None:
    """jti and user hit anywhere; a role in a room hits tokens issued at or before it;
    a room's end hits media only."""
    assert Kill(token_id="j1").hits(HOST) and not Kill(token_id="j1").hits(VIEWER)
    assert Kill(user="v1").hits(VIEWER) and not Kill(user="v1").hits(HOST)
    role = Kill(room="r1", role=Role.HOST, issued_before=1_000)
    assert role.hits(HOST) and not role.hits(VIEWER)
    assert not Kill(room="r1", role=Role.HOST, issued_before=999).hits(HOST)
    assert not Kill(room="r2", role=Role.HOST, issued_before=1_000).hits(HOST)
    ended = Kill(room="r1", ended=True)
    assert not ended.hits(VIEWER)
    assert ended.hits_media("r1", VIEWER) and not ended.hits_media("r2", VIEWER)


def test_round_trip_and_junk() -> None:
    """Encoded notices decode to themselves; anything else decodes to None."""
    for kill in (Kill(user="u"), Kill(token_id="x/y+z"), Kill(room="r", ended=True),
                 Kill(room="r", role=Role.KOC, issued_before=5)):  # fmt: skip
        assert killswitch.decode(kill.encode()) == kill
    for junk in (b"", b"\xc1", msgpack.packb([1]), msgpack.packb({"user": "a b"}),
                 msgpack.packb({"role": "king"}), msgpack.packb({"before": True}),
                 msgpack.packb({"jti": ""}), b"\x80" * 2000):  # fmt: skip
        assert killswitch.decode(junk) is None
