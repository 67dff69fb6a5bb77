"""The longest-first order handed to the xdist workers (tests/schedule.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT
from tests.schedule import LONGEST, longest_first


@dataclass(frozen=True)
class Item:
    """A collected test as the order sees it: its file, and a name to follow it by."""

    path: Path
    name: str


def test_every_listed_module_exists_once() -> None:
    """A renamed or deleted module is taken off the list, never silently kept."""
    assert len(set(LONGEST)) == len(LONGEST)
    assert [path for path in LONGEST if not (ROOT / path).is_file()] == []


def test_listed_modules_lead_in_their_order_and_the_rest_keep_theirs() -> None:
    """LONGEST's modules first, in its order, each module's tests in their own order;
    then every other test as collected (a path outside the repository among them)."""
    first, second = ROOT / LONGEST[0], ROOT / LONGEST[1]
    other, elsewhere = ROOT / "tests" / "test_docs.py", Path("/elsewhere/test_x.py")
    items = [
        Item(other, "o1"), Item(second, "s1"), Item(elsewhere, "e1"), Item(first, "f1"),
        Item(other, "o2"), Item(second, "s2"), Item(first, "f2"),
    ]  # fmt: skip
    longest_first(items)
    assert [i.name for i in items] == ["f1", "f2", "s1", "s2", "o1", "e1", "o2"]
