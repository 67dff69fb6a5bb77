"""Group buys (拼团) and share-officer commission: the rules, in integer cents (pure).

A group buy is opened by the host on a product. Neighbours join a *group*:
one per community (scope ``community``) or one for the whole room (scope
``room``). A group *forms* when its distinct members reach ``target`` before
the deadline, and *fails* at the deadline otherwise. Tiers lower the price
for everyone as the group grows; the neighbour bonus (邻里助力) lowers it for
the whole group once one member has brought ``bonus_invites`` neighbours.

Commission (分享官): when a group forms, every member attributed to an
officer earns that officer ``level1_bp`` basis points of what the member
pays, and the officer who recruited that officer ``level2_bp``. Amounts are
floored to whole cents; money is never a float.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livecore.fields import integer, invalid, text

MAX_PRICE_CENTS = 10_000_000
MAX_TARGET = 10_000
MAX_TIERS = 5
DEFAULT_LEVEL1_BP = 2000  # 20 %
DEFAULT_LEVEL2_BP = 500  # 5 %
#: How long a ?ref= attribution lasts (first touch wins within it).
ATTRIBUTION_WINDOW_S = 7 * 24 * 3600


class Scope(StrEnum):
    COMMUNITY = "community"
    ROOM = "room"


class GroupStatus(StrEnum):
    OPEN = "open"
    FORMED = "formed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class GroupBuySpec:
    """What the host opens."""

    product: str
    price_cents: int
    target: int
    deadline: int  # Unix seconds
    tiers: tuple[tuple[int, int], ...]  # (members at least, discount cents each), ascending
    max_qty: int
    scope: Scope
    bonus_invites: int  # 0 = no neighbour bonus
    bonus_cents: int

    def public(self) -> dict[str, Any]:
        return {
            "product": self.product, "price_cents": self.price_cents, "target": self.target,
            "deadline": self.deadline, "tiers": [list(t) for t in self.tiers],
            "max_qty": self.max_qty, "scope": self.scope.value,
            "bonus_invites": self.bonus_invites, "bonus_cents": self.bonus_cents,
        }  # fmt: skip


def parse_spec(data: dict[str, Any], *, now: int) -> GroupBuySpec:
    """Validate a ``groupbuy_open`` message's fields."""
    product = text(data, "product", 80)
    price = integer(data, "price_cents", 1, MAX_PRICE_CENTS)
    target = integer(data, "target", 2, MAX_TARGET)
    duration = integer(data, "duration_s", 60, 7 * 24 * 3600)
    max_qty = integer(data, "max_qty", 1, 99, default=5)
    try:
        scope = Scope(data.get("scope", Scope.COMMUNITY.value))
    except ValueError:
        raise invalid("scope", "community or room") from None
    tiers = _tiers(data.get("tiers", []), price)
    bonus_invites = integer(data, "bonus_invites", 0, 50, default=0)
    bonus_cents = integer(data, "bonus_cents", 0, price, default=0)
    if (bonus_invites == 0) != (bonus_cents == 0):
        raise invalid("bonus_invites", "set both bonus fields or none")
    deepest = max((d for _, d in tiers), default=0)
    if deepest + bonus_cents >= price:
        raise invalid("tiers", "discounts must leave a price above 0")
    return GroupBuySpec(product, price, target, now + duration, tiers, max_qty, scope,
                        bonus_invites, bonus_cents)  # fmt: skip


def _tiers(value: Any, price: int) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or len(value) > MAX_TIERS:
        raise invalid("tiers", f"at most {MAX_TIERS} [members, cents]")
    tiers = []
    for i, tier in enumerate(value):
        ok = isinstance(tier, list) and len(tier) == 2
        ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in tier)
        if not ok or not 2 <= tier[0] <= MAX_TARGET or not 0 < tier[1] < price:
            raise invalid(f"tiers[{i}]", "[members ≥ 2, discount cents < price]")
        tiers.append((tier[0], tier[1]))
    tiers.sort()
    for (m1, d1), (m2, d2) in itertools.pairwise(tiers):
        if m1 == m2 or d2 <= d1:
            raise invalid("tiers", "bigger groups, bigger discounts")
    return tuple(tiers)


def unit_price(spec: GroupBuySpec, members: int, bonus: bool) -> int:
    """What each member pays per item with ``members`` in the group."""
    discount = 0
    for at_least, cents in spec.tiers:
        if members >= at_least:
            discount = cents
    return spec.price_cents - discount - (spec.bonus_cents if bonus else 0)


def check_commission(level1_bp: Any, level2_bp: Any) -> tuple[int, int]:
    """Basis points of both levels; each 0..10000 and their sum ≤ 10000 (100 %)."""
    for name, value in (("level1_bp", level1_bp), ("level2_bp", level2_bp)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10_000:
            raise invalid(name, "basis points 0..10000")
    if level1_bp + level2_bp > 10_000:
        raise invalid("level2_bp", "level1 + level2 must be ≤ 100 %")
    return level1_bp, level2_bp


def commission(amount_cents: int, bp: int) -> int:
    """``bp`` basis points of an amount, floored to a whole cent."""
    return amount_cents * bp // 10_000
