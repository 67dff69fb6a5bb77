"""Group-buy rules (pure): the opened spec, prices with tiers and bonus, commission."""

from __future__ import annotations

import random
from typing import Any

import pytest

from livecore import groupbuy
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import (
    MAX_PRICE_CENTS,
    MAX_TARGET,
    GroupBuySpec,
    Scope,
    check_commission,
    commission,
    parse_spec,
    unit_price,
)

NOW = 1_800_000_000
BASE: dict[str, Any] = {"product": "Honey peach 5 kg", "price_cents": 3990, "target": 10,
                        "duration_s": 3600}  # fmt: skip


def spec(**change: Any) -> GroupBuySpec:
    return parse_spec({**BASE, **change}, now=NOW)


def refused(field: str, **change: Any) -> LivecoreError:
    """parse_spec refuses the change with invalid_field naming ``field``."""
    with pytest.raises(LivecoreError) as exc:
        spec(**change)
    assert exc.value.code is ErrorCode.INVALID_FIELD, exc.value
    assert exc.value.message.startswith(f"{field}:"), exc.value.message
    return exc.value


# -- parse_spec --------------------------------------------------------------------------


def test_defaults() -> None:
    """Only the required fields: 5 per person, community scope, no tiers, no bonus."""
    s = spec()
    assert s == GroupBuySpec("Honey peach 5 kg", 3990, 10, NOW + 3600, (), 5, Scope.COMMUNITY,
                             0, 0)  # fmt: skip
    assert s.public() == {
        "product": "Honey peach 5 kg", "price_cents": 3990, "target": 10,
        "deadline": NOW + 3600, "tiers": [], "max_qty": 5, "scope": "community",
        "bonus_invites": 0, "bonus_cents": 0,
    }  # fmt: skip


def test_everything_set() -> None:
    """Every optional field is kept; the product name is stripped; tiers are sorted."""
    s = spec(product="  Peach  ", tiers=[[20, 500], [5, 200]], max_qty=99, scope="room",
             bonus_invites=3, bonus_cents=100, duration_s=7 * 24 * 3600)  # fmt: skip
    assert s.product == "Peach" and s.tiers == ((5, 200), (20, 500))
    assert (s.max_qty, s.scope, s.bonus_invites, s.bonus_cents) == (99, Scope.ROOM, 3, 100)
    assert s.deadline == NOW + 7 * 24 * 3600
    assert s.public()["tiers"] == [[5, 200], [20, 500]] and s.public()["scope"] == "room"


def test_bounds_accepted() -> None:
    """The extreme legal values are accepted."""
    assert spec(price_cents=1).price_cents == 1
    assert spec(price_cents=MAX_PRICE_CENTS).price_cents == MAX_PRICE_CENTS
    assert spec(target=2).target == 2 and spec(target=MAX_TARGET).target == MAX_TARGET
    assert spec(duration_s=60).deadline == NOW + 60
    assert spec(max_qty=1).max_qty == 1
    assert spec(product="p" * 80).product == "p" * 80
    assert spec(tiers=[[2, 1], [3, 2], [4, 3], [5, 4], [MAX_TARGET, 3989]]).tiers[-1] == (
        MAX_TARGET, 3989)  # fmt: skip
    assert spec(bonus_invites=50, bonus_cents=3989).bonus_cents == 3989


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("product", {"product": None}),
        ("product", {"product": ""}),
        ("product", {"product": "   "}),
        ("product", {"product": "p" * 81}),
        ("product", {"product": 5}),
        ("price_cents", {"price_cents": 0}),
        ("price_cents", {"price_cents": -1}),
        ("price_cents", {"price_cents": MAX_PRICE_CENTS + 1}),
        ("price_cents", {"price_cents": 39.9}),
        ("price_cents", {"price_cents": "3990"}),
        ("price_cents", {"price_cents": True}),
        ("price_cents", {"price_cents": None}),
        ("target", {"target": 1}),
        ("target", {"target": MAX_TARGET + 1}),
        ("target", {"target": 2.0}),
        ("target", {"target": None}),
        ("duration_s", {"duration_s": 59}),
        ("duration_s", {"duration_s": 7 * 24 * 3600 + 1}),
        ("duration_s", {"duration_s": None}),
        ("max_qty", {"max_qty": 0}),
        ("max_qty", {"max_qty": 100}),
        ("max_qty", {"max_qty": False}),
        ("scope", {"scope": "city"}),
        ("scope", {"scope": "Room"}),
        ("bonus_invites", {"bonus_invites": 51, "bonus_cents": 10}),
        ("bonus_invites", {"bonus_invites": -1, "bonus_cents": 10}),
        ("bonus_cents", {"bonus_invites": 2, "bonus_cents": -1}),
        ("bonus_cents", {"bonus_invites": 2, "bonus_cents": 3991}),
    ],
)
def test_field_errors(field: str, change: dict[str, Any]) -> None:
    """Each bad field is refused with invalid_field naming it."""
    refused(field, **change)


@pytest.mark.parametrize(
    ("field", "tiers"),
    [
        ("tiers", "5:100"),
        ("tiers", {"5": 100}),
        ("tiers", [[2, 1], [3, 2], [4, 3], [5, 4], [6, 5], [7, 6]]),  # 6 tiers
        ("tiers[0]", [[1, 100]]),  # fewer than 2 members
        ("tiers[0]", [[MAX_TARGET + 1, 100]]),
        ("tiers[0]", [[5, 0]]),  # no discount
        ("tiers[0]", [[5, -10]]),
        ("tiers[0]", [[5, 3990]]),  # discount = price
        ("tiers[1]", [[3, 100], [5, 4000]]),  # discount > price
        ("tiers[0]", [[5]]),
        ("tiers[0]", [[5, 100, 1]]),
        ("tiers[0]", [(5, 100)]),
        ("tiers[0]", [[True, 100]]),
        ("tiers[0]", [[5, 99.5]]),
        ("tiers[1]", [[3, 100], "5:200"]),
        ("tiers", [[5, 100], [5, 200]]),  # same member count twice
        ("tiers", [[3, 200], [5, 100]]),  # bigger group, smaller discount
        ("tiers", [[3, 200], [5, 200]]),  # bigger group, same discount
        ("tiers", [[10, 300], [3, 400]]),  # unsorted, and decreasing once sorted
    ],
)
def test_tier_errors(field: str, tiers: Any) -> None:
    """Tiers: ≤ 5 [members ≥ 2, 0 < cents < price], bigger groups strictly bigger discounts."""
    refused(field, tiers=tiers)


def test_bonus_both_or_none() -> None:
    """The neighbour bonus needs both fields (or neither)."""
    refused("bonus_invites", bonus_invites=3)
    refused("bonus_invites", bonus_cents=100)
    refused("bonus_invites", bonus_invites=0, bonus_cents=100)
    refused("bonus_invites", bonus_invites=3, bonus_cents=0)
    assert spec(bonus_invites=0, bonus_cents=0).bonus_invites == 0


def test_discounts_must_leave_a_price() -> None:
    """The deepest tier plus the bonus must stay below the price (a price of at least 1)."""
    refused("tiers", tiers=[[5, 3000]], bonus_invites=2, bonus_cents=990)
    refused("tiers", tiers=[[5, 2000], [9, 3989]], bonus_invites=2, bonus_cents=1)
    refused("tiers", bonus_invites=2, bonus_cents=3990)
    ok = spec(tiers=[[5, 3000]], bonus_invites=2, bonus_cents=989)
    assert unit_price(ok, 5, True) == 1


# -- prices ------------------------------------------------------------------------------


def test_unit_price_steps_at_the_tiers() -> None:
    """The deepest tier reached applies to everyone; below the first, the full price."""
    s = spec(price_cents=1000, tiers=[[3, 100], [5, 250], [10, 400]])
    prices = {n: unit_price(s, n, False) for n in range(0, 13)}
    assert prices == {0: 1000, 1: 1000, 2: 1000, 3: 900, 4: 900, 5: 750, 6: 750, 7: 750,
                      8: 750, 9: 750, 10: 600, 11: 600, 12: 600}  # fmt: skip


def test_unit_price_with_bonus() -> None:
    """The bonus comes off on top of the tier, only when it applies."""
    s = spec(price_cents=1000, tiers=[[3, 100]], bonus_invites=2, bonus_cents=50)
    assert unit_price(s, 2, False) == 1000
    assert unit_price(s, 2, True) == 950
    assert unit_price(s, 3, True) == 850
    plain = spec(price_cents=1000)
    assert unit_price(plain, 100, True) == 1000  # no bonus configured: nothing off


def test_unit_price_never_below_one_for_valid_specs() -> None:
    """Random valid specs: prices are ints, never rise with the group, and stay ≥ 1."""
    rng = random.Random(7)
    checked = 0
    for _ in range(2000):
        price = rng.randint(1, 50_000)
        fields: dict[str, Any] = {"price_cents": price}
        members = sorted(rng.sample(range(2, 60), rng.randint(0, 5)))
        cents = sorted(rng.sample(range(1, price), len(members))) if price > 5 else []
        fields["tiers"] = [[m, c] for m, c in zip(members, cents, strict=False)]
        if rng.random() < 0.5:
            fields |= {"bonus_invites": rng.randint(1, 5), "bonus_cents": rng.randint(1, price)}
        try:
            s = spec(**fields)
        except LivecoreError:
            continue
        checked += 1
        for bonus in (False, True):
            seq = [unit_price(s, n, bonus) for n in range(0, 70)]
            assert all(isinstance(p, int) and p >= 1 for p in seq)
            assert seq == sorted(seq, reverse=True)
    assert checked > 500


# -- commission --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("l1", "l2", "field"),
    [
        (-1, 0, "level1_bp"),
        (10_001, 0, "level1_bp"),
        (True, 0, "level1_bp"),
        (20.0, 0, "level1_bp"),
        ("2000", 0, "level1_bp"),
        (None, 0, "level1_bp"),
        (0, -5, "level2_bp"),
        (0, 10_001, "level2_bp"),
        (0, False, "level2_bp"),
        (2000, 1.5, "level2_bp"),
        (6000, 4001, "level2_bp"),  # the sum is over 100 %
        (10_000, 1, "level2_bp"),
    ],
)
def test_check_commission_refuses(l1: Any, l2: Any, field: str) -> None:
    """Each level 0..10000 basis points; the sum at most 10000."""
    with pytest.raises(LivecoreError) as exc:
        check_commission(l1, l2)
    assert exc.value.code is ErrorCode.INVALID_FIELD
    assert exc.value.message.startswith(f"{field}:"), exc.value.message


def test_check_commission_accepts() -> None:
    """The bounds and the defaults are accepted as they are."""
    assert check_commission(0, 0) == (0, 0)
    assert check_commission(10_000, 0) == (10_000, 0)
    assert check_commission(0, 10_000) == (0, 10_000)
    assert check_commission(6000, 4000) == (6000, 4000)
    defaults = (groupbuy.DEFAULT_LEVEL1_BP, groupbuy.DEFAULT_LEVEL2_BP)
    assert check_commission(*defaults) == (2000, 500)


def test_commission_floors_to_cents() -> None:
    """Basis points of an amount in integer cents, always floored (never rounded up)."""
    assert commission(1999, 2000) == 399  # 399.8
    assert commission(5997, 2000) == 1199  # 1199.4
    assert commission(5997, 500) == 299  # 299.85
    assert commission(1, 9999) == 0
    assert commission(10_000, 1) == 1
    assert commission(9_999, 1) == 0
    assert commission(0, 2000) == 0
    assert commission(3990, 10_000) == 3990
    rng = random.Random(3)
    for _ in range(1000):
        amount, bp = rng.randint(0, 10**9), rng.randint(0, 10_000)
        got = commission(amount, bp)
        assert isinstance(got, int) and got * 10_000 <= amount * bp < (got + 1) * 10_000
