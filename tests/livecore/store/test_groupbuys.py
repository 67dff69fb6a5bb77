"""Group buys and share officers on a real Valkey: exact, idempotent, once-only."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
import redis.asyncio

from livecore import groupbuy
from livecore.groupbuy import ATTRIBUTION_WINDOW_S, GroupBuySpec, commission, parse_spec
from livecore.store import index, keys
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.client import open_store
from livecore.store.groupbuys import MAX_JOINS_PER_CALL, GroupBuyStore, GroupState
from livecore.store.officers import _CODE_ALPHABET, ShareOfficerStore
from livecore.store.replies import as_str

ROOM = "r1"
NOW = 1_800_000_000
HOUR = 3600


@dataclass
class Shop:
    """The stores of one room, as a node builds them."""

    redis: redis.asyncio.Redis
    gbs: GroupBuyStore
    officers: ShareOfficerStore
    bus: Bus
    batched: bool

    def store_on(self, client: redis.asyncio.Redis) -> GroupBuyStore:
        """Another node's store (its own connection, and batcher if batched)."""
        batcher = ScriptBatcher(client) if self.batched else None
        return GroupBuyStore(client, Bus(client, batcher=batcher), batcher)

    async def open(self, *, l1: int = 2000, l2: int = 500, now: int = NOW, **fields: Any) -> str:
        """Open a group buy (1 h, price 1000, target 5 unless given)."""
        data = {"product": "Peach", "price_cents": 1000, "target": 5, "duration_s": HOUR,
                **fields}  # fmt: skip
        return await self.gbs.open(ROOM, parse_spec(data, now=now), l1, l2)

    async def join(
        self, gid: str, user: str, qty: int = 1, grp: str = "g1", inviter: str = "",
        now: int = NOW + 1,
    ) -> tuple[int, Any]:  # fmt: skip
        return await self.gbs.join(ROOM, gid, grp, user, qty, inviter, now)

    async def leave(
        self, gid: str, user: str, grp: str = "g1", now: int = NOW + 1
    ) -> tuple[int, Any]:
        return await self.gbs.leave(ROOM, gid, grp, user, now)

    async def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The room's durable events (decoded), optionally of one type."""
        out = [msgpack.unpackb(p, raw=False) for _, p in await self.bus.recent(ROOM, 1000)]
        return [e for e in out if kind is None or e["t"] == kind]

    async def orders(self) -> list[dict[str, str]]:
        """The room's orders stream, oldest first."""
        raw = await self.redis.xrange(keys.room(ROOM, "orders"))
        return [{as_str(k): as_str(v) for k, v in fields.items()} for _, fields in raw]

    async def earned(self, officer: str) -> int:
        found = await self.officers.get(ROOM, officer)
        assert found is not None, officer
        return found.earned_cents


@pytest.fixture(params=["direct", "batched"])
async def shop(aredis: redis.asyncio.Redis, request: pytest.FixtureRequest) -> AsyncIterator[Shop]:
    """The stores on the test's Valkey; scripts called directly, or through the
    ScriptBatcher (one pipeline per loop turn) as the hub does."""
    batched = request.param == "batched"
    batcher = ScriptBatcher(aredis) if batched else None
    bus = Bus(aredis, batcher=batcher)
    yield Shop(aredis, GroupBuyStore(aredis, bus, batcher), ShareOfficerStore(aredis), bus, batched)


def state(code_state: tuple[int, Any]) -> GroupState:
    code, st = code_state
    assert code >= 0 and isinstance(st, GroupState), code_state
    return st


# -- joining -----------------------------------------------------------------------------


async def test_open_stores_the_spec_and_emits(shop: Shop) -> None:
    """open() keeps the spec, lists the group buy as open, schedules its deadline, emits."""
    gid = await shop.open(tiers=[[3, 100]], bonus_invites=2, bonus_cents=50, max_qty=4)
    spec = await shop.gbs.spec(ROOM, gid)
    assert spec is not None
    assert spec["status"] == "open" and spec["tiers"] == "3:100" and spec["l1"] == "2000"
    assert await shop.gbs.open_ids(ROOM) == [gid]
    due = index.ScoredIndex(shop.redis, index.DUE)
    assert await due.upto(NOW + HOUR, 10) == [f"{ROOM}|{gid}"]
    (opened,) = await shop.events("groupbuy_opened")
    assert opened["gb"] == gid and opened["tiers"] == [[3, 100]] and opened["max_qty"] == 4
    assert opened["deadline"] == NOW + HOUR and opened["scope"] == "community"
    assert await shop.gbs.group(ROOM, gid, "nobody") == GroupState(0, 0, 0, "open", False)
    assert await shop.gbs.spec(ROOM, "gnope") is None


async def test_joins_of_one_turn_are_one_script_call(shop: Shop) -> None:
    """60 joins made in one loop turn over 3 groups (refusals among them) are one
    JOIN call in Valkey, and each caller gets its own answer, in order."""
    gid = await shop.open(target=100, max_qty=2)
    await shop.join(await shop.open(), "warm")  # the script is loaded
    await shop.redis.config_resetstat()
    calls = [shop.join(gid, f"u{i}", 3 if i % 10 == 9 else 1, f"g{i % 3}") for i in range(60)]
    calls.append(shop.join(gid, "u0", 1, "g1"))  # u0 is in g0: another group
    results = await asyncio.gather(*calls)
    stats = await shop.redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1, stats
    assert [code for code, _ in results] == [-3 if i % 10 == 9 else 1 for i in range(60)] + [-7]
    assert results[-1][1] == "g0"
    assert [state(r).members for r in results[:3]] == [1, 1, 1]
    assert state(results[57]).members == 18  # g0: u0, u3, ... u57 but u9, u39 (over max)


async def test_a_crowd_in_one_turn_is_split_into_bounded_calls(shop: Shop) -> None:
    """150 joins of one group buy in one turn: calls of at most MAX_JOINS_PER_CALL
    (64, 64, 22), every join counted once; through the batcher in the order made."""
    gid = await shop.open(target=1000, max_qty=2)
    await shop.join(await shop.open(), "warm")  # the script is loaded
    await shop.redis.config_resetstat()
    results = await asyncio.gather(*(shop.join(gid, f"u{i}") for i in range(150)))
    stats = await shop.redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == -(-150 // MAX_JOINS_PER_CALL) == 3
    versions = [state(r).version for r in results]
    assert sorted(versions) == list(range(1, 151))
    if shop.batched:  # one pipeline: the calls run in the order made (direct: each alone)
        assert versions == list(range(1, 151))
    assert (await shop.gbs.group(ROOM, gid, "g1")).members == 150


async def test_200_concurrent_joins_with_retries_are_exact(shop: Shop, redis_url: str) -> None:
    """200 users join at once, each twice, over 4 connections: exact, formed once."""
    gid = await shop.open(target=150, max_qty=9)
    rng = random.Random(5)
    qty = {f"u{i}": rng.randint(1, 9) for i in range(200)}
    clients = [await open_store(redis_url) for _ in range(4)]
    try:
        stores = [shop.store_on(c) for c in clients]
        calls = [(user, n) for user, n in qty.items()] * 2
        rng.shuffle(calls)
        results = await asyncio.gather(
            *(stores[i % 4].join(ROOM, gid, "g1", u, n, "", NOW + 5)
              for i, (u, n) in enumerate(calls))
        )  # fmt: skip
    finally:
        for client in clients:
            await client.aclose()
    assert Counter(code for code, _ in results) == {1: 200, 0: 200}
    final = await shop.gbs.group(ROOM, gid, "g1")
    assert (final.members, final.qty, final.status) == (200, sum(qty.values()), "formed")
    assert final.version == 200
    assert await shop.gbs.members(ROOM, gid, "g1") == qty
    (formed,) = await shop.events("groupbuy_formed")
    assert formed == {"t": "groupbuy_formed", "gb": gid, "group": "g1", "members": 150,
                      "qty": formed["qty"], "unit_cents": 1000}  # fmt: skip
    assert 150 <= formed["qty"] <= 150 * 9
    orders = await shop.orders()
    assert Counter(o["type"] for o in orders) == {"join": 200, "formed": 1}
    assert sorted(int(o["version"]) for o in orders if o["type"] == "join") == list(range(1, 201))


async def test_retry_change_and_quantity_limit(shop: Shop) -> None:
    """A retry with the same qty changes nothing (0); another qty changes it; max_qty holds."""
    gid = await shop.open(max_qty=5)
    assert await shop.join(gid, "alice", 2) == (1, GroupState(1, 1, 2, "open", False))
    assert await shop.join(gid, "alice", 2) == (0, GroupState(1, 1, 2, "open", False))
    assert await shop.join(gid, "alice", 5) == (1, GroupState(2, 1, 5, "open", False))
    assert await shop.join(gid, "alice", 6) == (-3, 5)
    assert await shop.join(gid, "bob", 6) == (-3, 5)
    assert await shop.join(gid, "bob", 1) == (1, GroupState(3, 2, 6, "open", False))
    joins = [(o["user"], o["qty"]) for o in await shop.orders()]
    assert joins == [("alice", "2"), ("alice", "5"), ("bob", "1")]


async def test_leave_then_rejoin(shop: Shop) -> None:
    """Leaving takes the member and quantity out; leaving twice is a no-op; rejoin counts."""
    gid = await shop.open()
    await shop.join(gid, "alice", 2)
    await shop.join(gid, "bob", 1)
    assert await shop.leave(gid, "alice") == (1, GroupState(3, 1, 1, "open", False))
    assert await shop.leave(gid, "alice") == (0, GroupState(3, 1, 1, "open", False))
    assert await shop.leave(gid, "nobody", grp="other") == (0, GroupState(0, 0, 0, "open", False))
    assert await shop.join(gid, "alice", 4) == (1, GroupState(4, 2, 5, "open", False))
    orders = [(o["type"], o["user"], o["qty"], o["version"]) for o in await shop.orders()]
    assert orders == [("join", "alice", "2", "1"), ("join", "bob", "1", "2"),
                      ("leave", "alice", "2", "3"), ("join", "alice", "4", "4")]  # fmt: skip
    assert await shop.gbs.members(ROOM, gid, "g1") == {"alice": 4, "bob": 1}


async def test_formed_group_is_final(shop: Shop) -> None:
    """Formed: no leave or change (-6), retries still 0, later joiners taken."""
    gid = await shop.open(target=2)
    await shop.join(gid, "a", 1)
    assert state(await shop.join(gid, "b", 2)).status == "formed"
    assert await shop.leave(gid, "a") == (-6, 0)
    assert await shop.join(gid, "a", 3) == (-6, 0)
    assert (await shop.join(gid, "a", 1))[0] == 0
    late = state(await shop.join(gid, "c", 1))
    assert (late.members, late.qty, late.status) == (3, 4, "formed")
    assert len(await shop.events("groupbuy_formed")) == 1
    assert [o["type"] for o in await shop.orders()] == ["join", "join", "formed", "join"]


async def test_unknown_group_buy_and_deadline(shop: Shop) -> None:
    """Unknown group buy → -1; at or after the deadline joins and leaves are closed (-2)."""
    gid = await shop.open()
    deadline = NOW + HOUR
    assert (await shop.join("gnope", "a"))[0] == -1
    assert (await shop.leave("gnope", "a"))[0] == -1
    assert (await shop.join(gid, "a", now=deadline - 1))[0] == 1
    assert (await shop.join(gid, "b", now=deadline))[0] == -2
    assert (await shop.join(gid, "b", now=deadline + 100))[0] == -2
    assert (await shop.leave(gid, "a", now=deadline))[0] == -2
    assert (await shop.gbs.group(ROOM, gid, "g1")).members == 1


# -- expiry ------------------------------------------------------------------------------


async def test_expire_exactly_once_under_concurrency(shop: Shop, redis_url: str) -> None:
    """Ten concurrent sweeps: one wins, open groups fail once, formed ones stay."""
    gid = await shop.open(target=3)
    other = await shop.open(target=2, duration_s=2 * HOUR)
    for user in ("a1", "a2", "a3"):
        await shop.join(gid, user, grp="formed-here")
    await shop.join(gid, "b1", 3, grp="open-b")
    for user in ("c1", "c2"):
        await shop.join(gid, user, grp="open-c", now=NOW + 2)
    await shop.join(gid, "c2", grp="open-c", now=NOW + 3)
    await shop.leave(gid, "c2", grp="open-c", now=NOW + 3)
    await shop.join(other, "x", grp="open-b")
    assert await shop.gbs.expire(ROOM, gid, NOW + HOUR - 1) == 0  # not yet
    assert await shop.gbs.due(NOW + HOUR - 1) == []
    assert await shop.gbs.due(NOW + HOUR) == [(ROOM, gid)]
    clients = [await open_store(redis_url) for _ in range(10)]
    try:
        stores = [shop.store_on(c) for c in clients]
        done = await asyncio.gather(*(s.expire(ROOM, gid, NOW + HOUR) for s in stores))
    finally:
        for client in clients:
            await client.aclose()
    assert sorted(done) == [0] * 9 + [3]  # 2 groups failed, + 1
    failed = await shop.events("groupbuy_failed")
    assert sorted((e["group"], e["members"]) for e in failed) == [("open-b", 1), ("open-c", 1)]
    kinds = [e["t"] for e in await shop.events() if e.get("gb") == gid]
    assert kinds[-3:] == ["groupbuy_failed", "groupbuy_failed", "groupbuy_closed"]
    assert kinds.count("groupbuy_closed") == 1 and kinds.count("groupbuy_formed") == 1
    assert (await shop.gbs.group(ROOM, gid, "formed-here")).status == "formed"
    for grp in ("open-b", "open-c"):
        assert (await shop.gbs.group(ROOM, gid, grp)).status == "failed"
    assert await shop.gbs.open_ids(ROOM) == [other]
    assert await shop.gbs.due(NOW + HOUR) == []
    assert await shop.gbs.expire(ROOM, gid, NOW + 2 * HOUR) == 0
    assert (await shop.join(gid, "late", grp="formed-here", now=NOW + HOUR))[0] == -2
    assert (await shop.gbs.group(ROOM, other, "open-b")).status == "open"
    failed_orders = [o for o in await shop.orders() if o["type"] == "failed"]
    assert sorted((o["group"], o["members"], o["gb"]) for o in failed_orders) == [
        ("open-b", "1", gid), ("open-c", "1", gid)]  # fmt: skip


async def test_expire_with_every_group_formed(shop: Shop) -> None:
    """A group buy whose groups all formed closes with no failure (returns 1)."""
    gid = await shop.open(target=2)
    for user in ("a", "b"):
        await shop.join(gid, user)
    assert await shop.gbs.expire(ROOM, gid, NOW + HOUR) == 1
    assert await shop.events("groupbuy_failed") == []
    assert len(await shop.events("groupbuy_closed")) == 1


# -- prices: tiers and the neighbour bonus ---------------------------------------------


@pytest.mark.parametrize(("target", "unit"), [(2, 1000), (3, 900), (4, 900), (5, 750), (6, 750)])
async def test_tiers_set_the_formed_price(shop: Shop, target: int, unit: int) -> None:
    """The formed price is the deepest tier reached at formation."""
    gid = await shop.open(target=target, tiers=[[3, 100], [5, 250]])
    for i in range(target):
        await shop.join(gid, f"u{i}", 2)
    (formed,) = await shop.events("groupbuy_formed")
    assert (formed["unit_cents"], formed["members"], formed["qty"]) == (unit, target, 2 * target)


async def test_lua_and_python_prices_agree(shop: Shop) -> None:
    """Random tiers and bonuses: the formed unit_cents (Lua) equals groupbuy.unit_price."""
    rng = random.Random(11)
    for round_ in range(25):
        target = rng.randint(2, 9)
        members = sorted(rng.sample(range(2, 12), rng.randint(0, 4)))
        cents = sorted(rng.sample(range(1, 400), len(members)))
        bonus = rng.choice([(0, 0), (1, 37), (2, 99)])
        fields = {
            "target": target,
            "tiers": [list(t) for t in zip(members, cents, strict=True)],
            "bonus_invites": bonus[0],
            "bonus_cents": bonus[1],
            "price_cents": 999,
        }
        spec: GroupBuySpec = parse_spec(
            {"product": "p", "duration_s": HOUR, **fields}, now=NOW
        )  # fmt: skip
        gid = await shop.gbs.open(ROOM, spec, 2000, 500)
        for i in range(target):
            inviter = "u0" if i and bonus[0] and i <= bonus[0] else ""
            await shop.join(gid, f"u{i}", 1, inviter=inviter)
        group = await shop.gbs.group(ROOM, gid, "g1")
        formed = [e for e in await shop.events("groupbuy_formed") if e["gb"] == gid]
        assert len(formed) == 1, round_
        expected = groupbuy.unit_price(spec, target, group.bonus)
        assert formed[0]["unit_cents"] == expected, (round_, fields, group)


async def test_neighbour_bonus(shop: Shop) -> None:
    """One member's bonus_invites invitees set b; invites of several never add up; the
    bonus follows the invitees until the group forms (a leave can take it away)."""
    gid = await shop.open(target=6, bonus_invites=2, bonus_cents=50, tiers=[[6, 100]])
    await shop.join(gid, "u0")
    for _ in range(3):  # a retried invited join counts once
        assert not state(await shop.join(gid, "u1", inviter="u0")).bonus
    assert not state(await shop.join(gid, "u2", inviter="u1")).bonus  # u0: 1, u1: 1
    assert state(await shop.join(gid, "u3", inviter="u0")).bonus  # u0: 2
    assert not state(await shop.leave(gid, "u3")).bonus  # u0: 1 again
    assert state(await shop.join(gid, "u3", inviter="u0")).bonus
    await shop.join(gid, "u4")
    assert not (await shop.events("groupbuy_formed"))
    assert state(await shop.join(gid, "u6")).status == "formed"
    (formed,) = await shop.events("groupbuy_formed")
    assert formed["unit_cents"] == 1000 - 100 - 50 and formed["members"] == 6
    invby = await shop.redis.hgetall(keys.room(ROOM, f"gb:{gid}:invby:g1"))
    assert {as_str(k): as_str(v) for k, v in invby.items()} == {"u1": "u0", "u2": "u1", "u3": "u0"}


async def test_no_bonus_without_enough_invites(shop: Shop) -> None:
    """One invite short: the group forms at the tier price, without the bonus."""
    gid = await shop.open(target=3, bonus_invites=2, bonus_cents=50)
    await shop.join(gid, "u0")
    await shop.join(gid, "u1", inviter="u0")
    assert not state(await shop.join(gid, "u2")).bonus
    (formed,) = await shop.events("groupbuy_formed")
    assert formed["unit_cents"] == 1000


async def test_inviter_must_be_a_member_of_the_group(shop: Shop) -> None:
    """Inviting oneself → -4; an inviter not in this group (or in another one) → -5."""
    gid = await shop.open()
    await shop.join(gid, "member", grp="g1")
    await shop.join(gid, "elsewhere", grp="g2")
    assert await shop.join(gid, "me", inviter="me") == (-4, 0)
    assert await shop.join(gid, "me", inviter="ghost") == (-5, 0)
    assert await shop.join(gid, "me", inviter="elsewhere") == (-5, 0)
    assert (await shop.gbs.group(ROOM, gid, "g1")).members == 1
    assert state(await shop.join(gid, "me", inviter="member")).members == 2


# -- share officers ------------------------------------------------------------------------


async def test_apply_needs_a_purchase_and_is_idempotent(shop: Shop) -> None:
    """A non-buyer is refused (-1); a buyer gets a 6-letter code, the same on every retry."""
    assert await shop.officers.apply(ROOM, "stranger", NOW) == (-1, "")
    assert await shop.officers.get(ROOM, "stranger") is None
    gid = await shop.open()
    await shop.join(gid, "buyer")
    status, code = await shop.officers.apply(ROOM, "buyer", NOW)
    assert status == 1 and len(code) == 6 and set(code) <= set(_CODE_ALPHABET)
    assert await shop.officers.apply(ROOM, "buyer", NOW + 5) == (0, code)
    officer = await shop.officers.get(ROOM, "buyer")
    assert officer is not None
    assert (officer.code, officer.recruiter, officer.earned_cents, officer.referrals,
            officer.rank) == (code, "", 0, 0, None)  # fmt: skip
    assert officer.public({"room": "x"})["recruiter"] is None


async def test_concurrent_applies_get_distinct_codes(shop: Shop) -> None:
    """Fifty buyers apply at once (each twice): fifty distinct codes, each kept on retry."""
    gid = await shop.open(target=100)
    users = [f"b{i}" for i in range(50)]
    for user in users:
        await shop.join(gid, user)
    first = await asyncio.gather(*(shop.officers.apply(ROOM, u, NOW) for u in users * 2))
    by_user: dict[str, set[str]] = {}
    for user, (status, code) in zip(users * 2, first, strict=True):
        assert status in (0, 1)
        by_user.setdefault(user, set()).add(code)
    assert all(len(codes) == 1 for codes in by_user.values())
    assert len({next(iter(c)) for c in by_user.values()}) == 50
    assert Counter(status for status, _ in first) == {1: 50, 0: 50}


async def make_officer(shop: Shop, user: str, now: int = NOW) -> str:
    """``user`` buys in a group buy of their own, then signs up; returns the code."""
    gid = await shop.open(target=10, now=now)
    await shop.join(gid, user, grp=f"own-{user}", now=now + 1)
    status, code = await shop.officers.apply(ROOM, user, now + 1)
    assert status == 1
    return code


async def test_attribution_first_touch_wins(shop: Shop) -> None:
    """First touch wins in the window; unknown -1, own code -2; then replaced."""
    code_a = await make_officer(shop, "offa")
    code_b = await make_officer(shop, "offb")
    assert await shop.officers.attribute(ROOM, code_a, "viewer", NOW) == (1, "offa")
    assert await shop.officers.attribute(ROOM, code_b, "viewer", NOW + 10) == (0, "offa")
    assert await shop.officers.attribute(ROOM, code_a, "viewer", NOW + 20) == (0, "offa")
    assert await shop.officers.attribute(ROOM, "ZZZZZZ", "viewer", NOW) == (-1, "")
    assert await shop.officers.attribute(ROOM, code_a, "offa", NOW) == (-2, "")
    edge = NOW + ATTRIBUTION_WINDOW_S
    assert await shop.officers.attribute(ROOM, code_b, "viewer", edge) == (0, "offa")
    assert await shop.officers.attribute(ROOM, code_b, "viewer", edge + 1) == (1, "offb")
    a, b = await shop.officers.get(ROOM, "offa"), await shop.officers.get(ROOM, "offb")
    assert a is not None and b is not None and (a.referrals, b.referrals) == (1, 1)


async def test_commission_two_levels(shop: Shop) -> None:
    """A (recruited by B) sells: A earns level 1, B level 2, per member, floored."""
    l1, l2 = 1234, 567
    code_b = await make_officer(shop, "offb")
    assert (await shop.officers.attribute(ROOM, code_b, "offa", NOW))[0] == 1
    code_a = await make_officer(shop, "offa")
    a = await shop.officers.get(ROOM, "offa")
    assert a is not None and a.recruiter == "offb"
    for user in ("m1", "m2", "m5", "m6"):
        assert (await shop.officers.attribute(ROOM, code_a, user, NOW + 2))[0] == 1
    assert (await shop.officers.attribute(ROOM, code_b, "m4", NOW + 2))[0] == 1
    gid = await shop.open(price_cents=1999, tiers=[[3, 99]], target=4, l1=l1, l2=l2, max_qty=9)
    await shop.join(gid, "m1", 3)
    await shop.join(gid, "m5", 7)
    await shop.join(gid, "m2", 2)
    await shop.leave(gid, "m5")  # left before formation: earns nobody anything
    await shop.join(gid, "m3", 1)  # attributed to nobody
    assert (await shop.earned("offa"), await shop.earned("offb")) == (0, 0)
    assert state(await shop.join(gid, "m4", 5)).status == "formed"
    (formed,) = await shop.events("groupbuy_formed")
    unit = formed["unit_cents"]
    assert unit == 1900
    a_expected = commission(unit * 3, l1) + commission(unit * 2, l1)
    b_expected = commission(unit * 3, l2) + commission(unit * 2, l2) + commission(unit * 5, l1)
    assert (a_expected, b_expected) == (703 + 468, 323 + 215 + 1172)
    assert (await shop.earned("offa"), await shop.earned("offb")) == (a_expected, b_expected)
    assert await shop.officers.leaderboard(ROOM) == [["offb", b_expected], ["offa", a_expected]]
    await shop.join(gid, "m6", 1)  # a late joiner of the formed group earns on joining
    assert await shop.earned("offa") == a_expected + commission(unit, l1)
    assert await shop.earned("offb") == b_expected + commission(unit, l2)
    ranks = [await shop.officers.get(ROOM, u) for u in ("offb", "offa")]
    assert [o.rank for o in ranks if o] == [1, 2]


async def test_expired_attribution_earns_nothing(shop: Shop) -> None:
    """A member whose attribution is older than the window at formation earns nothing."""
    code = await make_officer(shop, "off")
    await shop.officers.attribute(ROOM, code, "old", NOW)
    await shop.officers.attribute(ROOM, code, "fresh", NOW + 2 * 24 * 3600)
    later = NOW + 2 * 24 * 3600
    gid = await shop.open(target=2, now=later, duration_s=7 * 24 * 3600)
    join_at = NOW + ATTRIBUTION_WINDOW_S + 1
    await shop.join(gid, "old", 1, now=join_at)
    await shop.join(gid, "fresh", 1, now=join_at)
    assert await shop.earned("off") == commission(1000, 2000)


async def test_leaderboard_order(shop: Shop) -> None:
    """Officers sorted by earnings, highest first; top-N respected."""
    codes = {name: await make_officer(shop, name) for name in ("o1", "o2", "o3")}
    sales = {"o1": 1, "o2": 3, "o3": 2}
    for name, count in sales.items():
        for i in range(count):
            await shop.officers.attribute(ROOM, codes[name], f"{name}-m{i}", NOW + 2)
    gid = await shop.open(target=6)
    for name, count in sales.items():
        for i in range(count):
            await shop.join(gid, f"{name}-m{i}")
    board = await shop.officers.leaderboard(ROOM)
    assert board == [["o2", 600], ["o3", 400], ["o1", 200]]
    assert await shop.officers.leaderboard(ROOM, top=2) == board[:2]


async def test_orders_stream_fields(shop: Shop) -> None:
    """The orders stream carries join, leave, formed and failed with their fields."""
    gid = await shop.open(target=2)
    await shop.join(gid, "a", 2, grp="g1")
    await shop.join(gid, "z", 1, grp="g2")
    await shop.leave(gid, "z", grp="g2")
    await shop.join(gid, "z", 1, grp="g2")
    await shop.join(gid, "b", 3, grp="g1")
    await shop.gbs.expire(ROOM, gid, NOW + HOUR)
    rows = await shop.orders()
    assert [r["type"] for r in rows] == ["join", "join", "leave", "join", "join", "formed",
                                         "failed"]  # fmt: skip
    assert rows[0] == {"type": "join", "gb": gid, "group": "g1", "user": "a", "qty": "2",
                       "version": "1", "ts": str(NOW + 1)}  # fmt: skip
    assert rows[2] == {"type": "leave", "gb": gid, "group": "g2", "user": "z", "qty": "1",
                       "version": "2", "ts": str(NOW + 1)}  # fmt: skip
    assert rows[5] == {"type": "formed", "gb": gid, "group": "g1", "members": "2", "qty": "5",
                       "unit_cents": "1000", "ts": str(NOW + 1)}  # fmt: skip
    assert rows[6] == {"type": "failed", "gb": gid, "group": "g2", "members": "1",
                       "ts": str(NOW + HOUR)}  # fmt: skip
