"""Coupon specs (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from livecore.coupons import Task, parse_spec
from livecore.errors import LivecoreError

OK = {"title": " 立减5元 ", "off_cents": 500, "min_cents": 3000, "quota": 100}


def test_spec_defaults_and_tasks() -> None:
    """Title trimmed; one per buyer and no task by default; watch takes its minutes."""
    spec = parse_spec(dict(OK))
    assert (spec.title, spec.per_user, spec.task, spec.watch_min) == ("立减5元", 1, Task.NONE, 0)
    watch = parse_spec({**OK, "task": "watch", "watch_min": 3, "per_user": 2})
    assert (watch.task, watch.watch_min, watch.per_user) == (Task.WATCH, 3, 2)
    assert parse_spec({**OK, "task": "groupbuy"}).task is Task.GROUPBUY
    assert parse_spec({**OK, "min_cents": 0}).min_cents == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x" * 31}, "title"),
        ({"off_cents": 0}, "off_cents"),
        ({"off_cents": 3000}, "off_cents"),  # a coupon never pays the whole threshold
        ({"quota": 0}, "quota"),
        ({"per_user": 11}, "per_user"),
        ({"task": "dance"}, "task"),
        ({"task": 1}, "task"),
        ({"task": "watch"}, "watch_min"),
        ({"task": "watch", "watch_min": 121}, "watch_min"),
        ({"watch_min": 5}, "watch_min"),  # only with task watch
    ],
)
def test_bad_specs_name_their_field(change: dict[str, Any], field: str) -> None:
    """Every refusal is invalid_field naming the field first."""
    with pytest.raises(LivecoreError) as info:
        parse_spec({**OK, **change})
    assert info.value.code == "invalid_field" and info.value.message.startswith(field)
