"""The hub's tests wait on conditions (tests/waiting.py, an injected clock), never
sleep and peek: a sleep is allowed only for a window in which nothing may happen,
or to pace the load a test makes, and a comment just above it says so."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

CHECKED = (ROOT / "tests" / "signalling" / "hub",)
#: Lines above a sleep that may hold the comment naming its window.
COMMENT_REACH = 3


def sleeps(path: Path) -> list[int]:
    """Line numbers of every ``sleep(...)`` call (asyncio's, time's, or imported bare)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "sleep":
            found.append(node.lineno)
    return found


def unexplained(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    bad = []
    for lineno in sleeps(path):
        above = lines[max(0, lineno - 1 - COMMENT_REACH) : lineno]
        comments = " ".join(line.partition("#")[2] for line in above if "#" in line)
        if not any(word in comments.lower() for word in ("nothing", "pace")):
            bad.append(f"{path.name}:{lineno}")
    return bad


def test_the_checker_finds_sleeps(tmp_path: Path) -> None:
    """A bare sleep is flagged; one under a comment naming its quiet window is not."""
    bare = tmp_path / "bare.py"
    bare.write_text("import asyncio\nasync def f():\n    await asyncio.sleep(1.5)\n")
    quiet = tmp_path / "quiet.py"
    quiet.write_text("import time\n# a window in which nothing may happen\ntime.sleep(0.2)\n")
    assert sleeps(bare) == [3] and sleeps(quiet) == [3]
    assert unexplained(quiet) == []
    assert len(_unexplained_under(tmp_path)) == 1


def _unexplained_under(*roots: Path) -> list[str]:
    out: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            out += unexplained(path)
    return out


def test_hub_tests_do_not_sleep_and_peek() -> None:
    """Every sleep in the hub's tests is a window in which nothing may happen, or
    paces the traffic the test makes."""
    assert _unexplained_under(*CHECKED) == []
