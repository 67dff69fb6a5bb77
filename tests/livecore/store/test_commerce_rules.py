"""The commerce rules that must hold under every path (issue: one layer for the rules).

Each test names the rule it guards; all run on a real Valkey, with the scripts
called directly and through the batcher (the ``shop`` fixture).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from livecore.groupbuy import ATTRIBUTION_WINDOW_S, commission
from livecore.store import keys
from livecore.store.groupbuys import OTHER_GROUP, GroupState, iso_week
from tests.livecore.store.test_groupbuys import HOUR, NOW, ROOM, Shop, make_officer, shop, state

__all__ = ["shop"]  # the fixture, re-exported for pytest


async def _orders_of(shop: Shop, kind: str) -> list[dict[str, str]]:
    return [o for o in await shop.orders() if o["type"] == kind]


# 1. One buyer, one group per group buy -------------------------------------------------


async def test_a_buyer_joins_one_group_per_groupbuy(shop: Shop) -> None:
    """Joining a second community's group of the same group buy is refused, atomically;
    after leaving the first, the second is open to them."""
    gid = await shop.open(target=5, max_qty=3)
    assert state(await shop.join(gid, "amy", 3, grp="north")).members == 1
    assert await shop.join(gid, "amy", 3, grp="south") == (OTHER_GROUP, "north")
    assert await shop.gbs.group(ROOM, gid, "south") == GroupState(0, 0, 0, "open", False)
    assert (await shop.gbs.group(ROOM, gid, "north")).qty == 3
    assert [o["group"] for o in await _orders_of(shop, "join")] == ["north"]
    await shop.leave(gid, "amy", grp="north")
    assert state(await shop.join(gid, "amy", 2, grp="south")).members == 1
    assert (await shop.gbs.group(ROOM, gid, "north")).members == 0
    other = await shop.open(target=5)
    assert state(await shop.join(other, "amy", grp="north")).members == 1  # another buy: fine


async def test_mine_finds_the_group_wherever_the_community_came_from(shop: Shop) -> None:
    """mine() reads the buyer's group from the group buy itself, not the connection."""
    gid, other = await shop.open(), await shop.open()
    await shop.join(gid, "amy", 2, grp="north")
    assert await shop.gbs.mine(ROOM, "amy", [gid, other]) == {gid: {"group": "north", "qty": 2}}
    assert await shop.gbs.mine(ROOM, "bob", [gid, other]) == {}


# 2. Price and commission agree after formation ---------------------------------------------


async def test_a_deeper_tier_after_formation_reprices_everyone(shop: Shop) -> None:
    """A later joiner who reaches a deeper tier lowers everyone's price; one `repriced`
    order and every officer's commission recomputed in the same step."""
    code = await make_officer(shop, "off")
    for user in ("m1", "m2", "m3"):
        await shop.officers.attribute(ROOM, code, user, NOW + 1)
    gid = await shop.open(target=2, tiers=[[3, 100]], max_qty=5)
    await shop.join(gid, "m1", 2)
    assert state(await shop.join(gid, "m2", 1)).status == "formed"
    assert await shop.earned("off") == commission(1000 * 3, 2000)
    assert state(await shop.join(gid, "m3", 1)).members == 3
    (repriced,) = await _orders_of(shop, "repriced")
    assert (repriced["unit_cents"], repriced["prev_cents"], repriced["members"]) == (
        "900", "1000", "3")  # fmt: skip
    (event,) = await shop.events("groupbuy_repriced")
    assert (event["unit_cents"], event["prev_cents"]) == (900, 1000)
    expected = commission(900 * 2, 2000) + commission(900, 2000) + commission(900, 2000)
    assert await shop.earned("off") == expected
    assert await shop.officers.leaderboard(ROOM) == [["off", expected]]
    await shop.join(gid, "m4", 1)  # no tier crossed: no new repricing
    assert len(await _orders_of(shop, "repriced")) == 1


async def test_the_bonus_unlocked_after_formation_reprices_too(shop: Shop) -> None:
    """邻里助力 unlocked by a late invited joiner lowers every member's price."""
    gid = await shop.open(target=2, bonus_invites=2, bonus_cents=50)
    await shop.join(gid, "host-friend")
    await shop.join(gid, "n1", inviter="host-friend")
    assert (await shop.events("groupbuy_formed"))[0]["unit_cents"] == 1000
    assert state(await shop.join(gid, "n2", inviter="host-friend")).bonus
    (repriced,) = await _orders_of(shop, "repriced")
    assert repriced["unit_cents"] == "950"


# 3. No level-2 commission on one's own purchase --------------------------------------------


async def test_no_level2_commission_on_ones_own_purchase(shop: Shop) -> None:
    """B recruited A; B buying through A's link pays A level 1 and B nothing."""
    code_b = await make_officer(shop, "offb")
    await shop.officers.attribute(ROOM, code_b, "offa", NOW)
    code_a = await make_officer(shop, "offa")
    b_before = await shop.earned("offb")
    await shop.officers.attribute(ROOM, code_a, "offb", NOW + ATTRIBUTION_WINDOW_S + 10)
    later = NOW + ATTRIBUTION_WINDOW_S + 20
    gid = await shop.open(target=2, now=later)
    await shop.join(gid, "offb", 2, now=later + 1)
    await shop.join(gid, "x", 1, now=later + 1)
    assert await shop.earned("offa") == commission(2000, 2000)
    assert await shop.earned("offb") == b_before


# 4. Attribution at join time ----------------------------------------------------------------


async def test_a_ref_visit_after_joining_earns_nothing(shop: Shop) -> None:
    """The officer of a member is the one attributed when the member joined."""
    code = await make_officer(shop, "off")
    gid = await shop.open(target=2)
    await shop.join(gid, "early")
    await shop.officers.attribute(ROOM, code, "early", NOW + 2)  # after the join
    await shop.join(gid, "other")
    assert await shop.earned("off") == 0


async def test_an_attribution_that_ages_before_formation_still_pays(shop: Shop) -> None:
    """Attributed when joining, the window passing before formation changes nothing."""
    code = await make_officer(shop, "off")
    await shop.officers.attribute(ROOM, code, "m1", NOW)
    gid = await shop.open(target=2, now=NOW + ATTRIBUTION_WINDOW_S - 10)
    await shop.join(gid, "m1", now=NOW + ATTRIBUTION_WINDOW_S - 5)
    await shop.join(gid, "m2", now=NOW + ATTRIBUTION_WINDOW_S + 100)
    assert await shop.earned("off") == commission(1000, 2000)


# 5. The bonus follows the invitees ------------------------------------------------------------


async def test_the_bonus_leaves_with_the_invitees(shop: Shop) -> None:
    """Before formation, a leave that drops the invites below the need removes the bonus;
    so does the inviter leaving."""
    gid = await shop.open(target=9, bonus_invites=2, bonus_cents=50)
    await shop.join(gid, "inv")
    await shop.join(gid, "a", inviter="inv")
    assert state(await shop.join(gid, "b", inviter="inv")).bonus
    assert not state(await shop.leave(gid, "b")).bonus
    assert state(await shop.join(gid, "c", inviter="inv")).bonus
    assert not state(await shop.leave(gid, "inv")).bonus  # the inviter is gone
    assert state(await shop.join(gid, "inv")).bonus  # and back, with their invitees


# 6. Joined-then-left is not a buyer -------------------------------------------------------


async def test_joined_then_left_is_not_a_buyer(shop: Shop) -> None:
    """officer_apply needs a membership now; one left of two still counts."""
    g1, g2 = await shop.open(), await shop.open()
    await shop.join(g1, "amy")
    await shop.leave(g1, "amy")
    assert await shop.officers.apply(ROOM, "amy", NOW + 2) == (-1, "")
    await shop.join(g1, "amy")
    await shop.join(g2, "amy")
    await shop.leave(g1, "amy")
    assert (await shop.officers.apply(ROOM, "amy", NOW + 2))[0] == 1


# 7. No failed order for an empty group ---------------------------------------------------


async def test_no_failed_order_or_event_for_an_empty_group(shop: Shop) -> None:
    """A group whose members all left fails silently at the deadline."""
    gid = await shop.open(target=3)
    await shop.join(gid, "a", grp="empty")
    await shop.leave(gid, "a", grp="empty")
    await shop.join(gid, "b", grp="kept")
    assert await shop.gbs.expire(ROOM, gid, NOW + HOUR) == 2
    assert [o["group"] for o in await _orders_of(shop, "failed")] == ["kept"]
    assert [e["group"] for e in await shop.events("groupbuy_failed")] == ["kept"]
    assert (await shop.gbs.group(ROOM, gid, "empty")).status == "failed"


# 8. Opening is atomic --------------------------------------------------------------------


async def test_opening_a_groupbuy_is_one_atomic_call(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spec, open set and event in one script, after the deadline's index entry
    (another slot): a crash in between leaves an entry the sweep drops."""
    sent: list[str] = []
    execute = shop.redis.execute_command

    async def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await execute(*args, **options)

    monkeypatch.setattr(shop.redis, "execute_command", counting)
    gid = await shop.open()
    monkeypatch.undo()
    assert [c for c in sent if c not in {"SCRIPT LOAD"}] == ["ZADD", "EVALSHA"], sent
    assert await shop.gbs.due(NOW + HOUR) == [(ROOM, gid)]
    assert len(await shop.events("groupbuy_opened")) == 1


async def test_a_deadline_without_a_groupbuy_is_dropped_by_the_sweep(shop: Shop) -> None:
    """What a crash between the index entry and the script leaves: the sweep's
    expire finds nothing open, changes nothing and drops the entry."""
    await shop.gbs.due_index.add(f"{ROOM}|gnothing", NOW)
    assert await shop.gbs.due(NOW) == [(ROOM, "gnothing")]
    assert await shop.gbs.expire(ROOM, "gnothing", NOW) == 0
    assert await shop.gbs.due(NOW) == []
    assert await shop.events("groupbuy_closed") == []


async def test_a_deadline_not_yet_due_stays_listed(shop: Shop) -> None:
    """A node whose clock runs ahead sweeps early: the script refuses, the entry stays."""
    gid = await shop.open()
    assert await shop.gbs.expire(ROOM, gid, NOW + HOUR - 1) == 0
    assert await shop.gbs.due(NOW + HOUR) == [(ROOM, gid)]
    assert (await shop.gbs.spec(ROOM, gid) or {})["status"] == "open"


async def test_closed_groupbuys_leave_the_open_set(shop: Shop) -> None:
    """The open set holds only open group buys: the snapshot reads no closed ones."""
    gid, other = await shop.open(), await shop.open(duration_s=2 * HOUR)
    await shop.gbs.expire(ROOM, gid, NOW + HOUR)
    assert await shop.gbs.open_ids(ROOM) == [other]
    assert await shop.redis.smembers(keys.room(ROOM, "gbs")) == {other.encode()}


# 12. Commission follows the order's life --------------------------------------------------


async def test_commission_is_pending_then_confirmed_or_reversed(shop: Shop) -> None:
    """Pending at formation; the shop's receipt confirms, a refund reverses; repeats are
    harmless; a refunded order cannot be confirmed; the weekly board follows."""
    code_b = await make_officer(shop, "offb")
    await shop.officers.attribute(ROOM, code_b, "offa", NOW)
    code_a = await make_officer(shop, "offa")
    for user in ("m1", "m2"):
        await shop.officers.attribute(ROOM, code_a, user, NOW + 1)
    gid = await shop.open(target=2)
    await shop.join(gid, "m1", 2)
    await shop.join(gid, "m2", 1)
    a = await shop.officers.get(ROOM, "offa")
    assert a is not None and (a.pending_cents, a.confirmed_cents) == (600, 0)
    settle = shop.gbs.settle
    assert await settle(ROOM, gid, "g1", "m1", "received", NOW + 5) == (1, "c")
    assert await settle(ROOM, gid, "g1", "m1", "received", NOW + 6) == (0, "c")
    a = await shop.officers.get(ROOM, "offa")
    assert a is not None and (a.pending_cents, a.confirmed_cents, a.earned_cents) == (200, 400, 600)
    b = await shop.officers.get(ROOM, "offb")
    assert b is not None and (b.pending_cents, b.confirmed_cents) == (50, 100)
    assert await settle(ROOM, gid, "g1", "m2", "refunded", NOW + 7) == (1, "r")
    assert await settle(ROOM, gid, "g1", "m2", "refunded", NOW + 8) == (0, "r")
    assert await settle(ROOM, gid, "g1", "m2", "received", NOW + 9) == (-2, "r")
    a = await shop.officers.get(ROOM, "offa")
    assert a is not None and (a.pending_cents, a.confirmed_cents, a.earned_cents) == (0, 400, 400)
    assert await settle(ROOM, gid, "g1", "ghost", "received", NOW) == (-1, "")
    assert await settle(ROOM, gid, "g1", "offa-none", "received", NOW) == (-1, "")
    week = iso_week(NOW + 9)
    assert await shop.officers.leaderboard(ROOM, week=week) == [["offa", 400], ["offb", 100]]
    assert await shop.officers.leaderboard(ROOM) == [["offa", 400], ["offb", 100]]
    assert len(await _orders_of(shop, "commission")) == 2


async def test_settle_needs_a_formed_group(shop: Shop) -> None:
    """A receipt for an open group's member is not an order yet."""
    gid = await shop.open(target=3)
    await shop.join(gid, "m1")
    assert await shop.gbs.settle(ROOM, gid, "g1", "m1", "received", NOW) == (-1, "")


# 13. Declared keys ----------------------------------------------------------------------


_CALL = re.compile(r"redis\.call\(\s*'(\w+)'\s*,\s*([^,)]+)")
_KEY_EXPR = re.compile(r"^(KEYS\[[^\]]+\]|K\.\w+|k\w+)$")
#: Commands whose first argument is not a key.
_KEYLESS = {"SPUBLISH", "PUBLISH"}


def _store_scripts() -> dict[str, str]:
    """Every Lua source (a module-level string that calls redis) in livecore.store."""
    import importlib
    import pkgutil

    import livecore.store

    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(livecore.store.__path__):
        module = importlib.import_module(f"livecore.store.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, str) and "redis.call(" in value:
                found[f"{info.name}.{name}"] = value
    return found


@pytest.mark.parametrize("name", sorted(_store_scripts()))
def test_every_script_touches_only_declared_keys(name: str) -> None:
    """Every key a script reads or writes comes from KEYS (or a local bound to one):
    no key built inside the script from a prefix, so scripts are cluster-correct."""
    source = _store_scripts()[name]
    for command, first in _CALL.findall(source):
        if command.upper() in _KEYLESS:
            continue
        assert _KEY_EXPR.match(first.strip()), f"{name}: {command} on {first.strip()!r}"
