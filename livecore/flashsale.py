"""Flash sales (秒杀): the host's spec and the sale's states, in integer cents (pure).

The host starts a flash sale on the product pinned in the room: a price, a
stock, a per-buyer limit, a countdown before buyers may tap 抢 and a duration.
A sale is *scheduled* until its start, *open* while it has stock and time,
*sold_out* once its stock is gone and *ended* when its time is up or the host
stops it. The store (:mod:`livecore.store.flashsale`) applies each buy in one
atomic script, so stock never goes below 0 and no buyer passes the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livecore.fields import integer, invalid

MAX_PRICE_CENTS = 10_000_000
MAX_STOCK = 100_000
MAX_LIMIT = 99
MAX_COUNTDOWN_S = 3600
MIN_DURATION_S = 10
MAX_DURATION_S = 24 * 3600
#: The fields a ``flash_start`` may carry (the product comes from the pinned card).
START_FIELDS = frozenset({"price_cents", "stock", "limit", "countdown_s", "duration_s"})


class FlashStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    SOLD_OUT = "sold_out"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class FlashSpec:
    """What the host starts; times are Unix seconds."""

    product: str
    price_cents: int
    stock: int
    limit: int
    starts_at: int
    ends_at: int

    def public(self) -> dict[str, Any]:
        return {
            "product": self.product, "price_cents": self.price_cents, "stock": self.stock,
            "limit": self.limit, "starts_at": self.starts_at, "ends_at": self.ends_at,
        }  # fmt: skip


def check_start(data: dict[str, Any]) -> None:
    """The wire check of ``flash_start`` (types and ranges; no product, no clock)."""
    integer(data, "price_cents", 1, MAX_PRICE_CENTS)
    integer(data, "stock", 1, MAX_STOCK)
    integer(data, "limit", 1, MAX_LIMIT, default=1)
    integer(data, "countdown_s", 0, MAX_COUNTDOWN_S, default=0)
    integer(data, "duration_s", MIN_DURATION_S, MAX_DURATION_S)


def parse_spec(
    data: dict[str, Any], product: str, card_price: int | None, *, now: int
) -> FlashSpec:
    """A sale of the pinned ``product`` from a ``flash_start`` message's fields; a flash
    price is below the card's price when the card names one."""
    check_start(data)
    price = int(data["price_cents"])
    if card_price is not None and card_price > 0 and price >= card_price:
        raise invalid("price_cents", f"a flash price is below the card's {card_price}")
    starts = now + int(data.get("countdown_s", 0))
    return FlashSpec(
        product, price, int(data["stock"]), int(data.get("limit", 1)), starts,
        starts + int(data["duration_s"]),
    )  # fmt: skip


def status_at(spec: FlashSpec, sold: int, stopped: bool, now: int) -> FlashStatus:
    """The sale's state at ``now`` (``stopped``: the host or the sweep ended it)."""
    if stopped or now >= spec.ends_at:
        return FlashStatus.ENDED
    if sold >= spec.stock:
        return FlashStatus.SOLD_OUT
    if now < spec.starts_at:
        return FlashStatus.SCHEDULED
    return FlashStatus.OPEN
