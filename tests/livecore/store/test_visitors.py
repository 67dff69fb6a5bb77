"""A visitor's own part of a room in one script: the same answers as the stores'
own readers (officer record, memberships, votes), on both stores."""

from __future__ import annotations

from livecore.groupbuy import parse_spec
from livecore.store.batch import ScriptBatcher
from livecore.store.client import StoreClient
from livecore.store.facade import Stores
from livecore.store.visitors import VisitorStore

ROOM = "r1"
NOW = 1_800_000_000


async def test_a_visitor_is_read_as_the_stores_read_them(aredis: StoreClient) -> None:
    """An officer who joined one of two group buys and voted in one of two polls:
    the one call gives what officers.get, groupbuys.mine and polls.vote_of give."""
    stores = Stores(aredis)
    spec = parse_spec({"product": "Peach", "price_cents": 1000, "target": 5,
                       "duration_s": 3600}, now=NOW)  # fmt: skip
    gb1 = await stores.groupbuys.open(ROOM, spec, 2000, 500)
    gb2 = await stores.groupbuys.open(ROOM, spec, 2000, 500)
    await stores.groupbuys.join(ROOM, gb1, "c1", "amy", 3, "", NOW + 1)
    await stores.groupbuys.join(ROOM, gb1, "c1", "bob", 1, "", NOW + 1)
    status, code = await stores.officers.apply(ROOM, "amy", NOW + 2)
    assert status == 1 and code
    opened = [await stores.polls.open(ROOM, "Which?", ["a", "b"], NOW + 60, NOW) for _ in "12"]
    p1, p2 = (o[0] for o in opened if o is not None)
    await stores.polls.vote(ROOM, p1, "amy", 1, NOW + 3)

    for visitors in (stores.visitors, VisitorStore(aredis, ScriptBatcher(aredis))):
        amy = await visitors.read(ROOM, "amy", [gb1, gb2], [p1, p2])
        assert amy.officer == await stores.officers.get(ROOM, "amy")
        assert amy.officer is not None and amy.officer.code == code
        assert amy.joined == await stores.groupbuys.mine(ROOM, "amy", [gb1, gb2])
        assert amy.joined == {gb1: {"group": "c1", "qty": 3}}
        assert amy.votes == {p1: 1}

        nobody = await visitors.read(ROOM, "nobody", [gb1, gb2], [p1, p2])
        assert nobody.officer is None and nobody.joined == {} and nobody.votes == {}
        assert (await visitors.read(ROOM, "bob", [], [])).joined == {}  # not asked


async def test_a_visitor_who_left_is_not_a_member(aredis: StoreClient) -> None:
    stores = Stores(aredis)
    spec = parse_spec({"product": "Peach", "price_cents": 1000, "target": 5,
                       "duration_s": 3600}, now=NOW)  # fmt: skip
    gb = await stores.groupbuys.open(ROOM, spec, 2000, 500)
    await stores.groupbuys.join(ROOM, gb, "c1", "amy", 2, "", NOW + 1)
    await stores.groupbuys.leave(ROOM, gb, "c1", "amy", NOW + 2)
    amy = await stores.visitors.read(ROOM, "amy", [gb], [])
    assert amy.joined == await stores.groupbuys.mine(ROOM, "amy", [gb]) == {}
