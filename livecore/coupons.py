"""Coupons (优惠券) handed out during a live: the host's spec and its checks (pure).

A coupon takes ``off_cents`` off an order of at least ``min_cents``. The host
creates it before or during the live with a total ``quota`` and a per-buyer
limit; buyers claim it only while the room is live, optionally after a task:
watching ``watch_min`` minutes, commenting, or joining a group buy. A claimed
coupon goes with a flash-sale order to the shop (the order record names it).
The store (:mod:`livecore.store.coupons`) claims in one atomic script.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from livecore.fields import integer, invalid, text

MAX_OFF_CENTS = 1_000_000
MAX_QUOTA = 100_000
MAX_PER_USER = 10
MAX_WATCH_MIN = 120
#: Coupons one room may hold (a live hands out a few, not a catalogue).
MAX_COUPONS = 20
CREATE_FIELDS = frozenset({"title", "off_cents", "min_cents", "quota", "per_user", "task",
                           "watch_min"})  # fmt: skip


class Task(StrEnum):
    """What a buyer does before claiming (``none``: nothing)."""

    NONE = "none"
    WATCH = "watch"
    COMMENT = "comment"
    GROUPBUY = "groupbuy"


@dataclass(frozen=True, slots=True)
class CouponSpec:
    title: str
    off_cents: int
    min_cents: int
    quota: int
    per_user: int
    task: Task
    watch_min: int

    def public(self) -> dict[str, Any]:
        return {
            "title": self.title, "off_cents": self.off_cents, "min_cents": self.min_cents,
            "quota": self.quota, "per_user": self.per_user, "task": self.task.value,
            "watch_min": self.watch_min,
        }  # fmt: skip


def parse_spec(data: dict[str, Any]) -> CouponSpec:
    """Validate a ``coupon_create`` message's fields (also its wire check)."""
    title = text(data, "title", 30)
    off = integer(data, "off_cents", 1, MAX_OFF_CENTS)
    least = integer(data, "min_cents", 0, 100 * MAX_OFF_CENTS, default=0)
    if least and off >= least:
        raise invalid("off_cents", "must be below min_cents (a coupon cannot pay the order)")
    quota = integer(data, "quota", 1, MAX_QUOTA)
    per_user = integer(data, "per_user", 1, MAX_PER_USER, default=1)
    raw_task = data.get("task", Task.NONE.value)
    try:
        task = Task(raw_task) if isinstance(raw_task, str) else None
    except ValueError:
        task = None
    if task is None:
        raise invalid("task", "none, watch, comment or groupbuy")
    watch = 0
    if task is Task.WATCH:
        watch = integer(data, "watch_min", 1, MAX_WATCH_MIN)
    elif "watch_min" in data:
        raise invalid("watch_min", "only with task watch")
    return CouponSpec(title, off, least, quota, per_user, task, watch)
