"""Lab tests: each builds its own namespaces (loadtests.netlab) and tears them down.

Without root or ``ip netns`` a lab test is skipped with the reason on a
developer's machine and FAILS under ``CI=true`` (CI runs as root on a
machine that has them: it must never pass with the lab skipped).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtests.netlab import unavailable
from loadtests.netlab.lab import close_all_now
from tests.helpers import missing


def require_lab() -> None:
    """Skip (or fail under CI=true) where this machine cannot build a lab."""
    why = unavailable()
    if why is None:
        return
    missing(why)


@pytest.fixture
def lab_machine() -> Iterator[None]:
    """The machine can build labs; after the test, any lab it left open (its loop
    aborted by a timeout) is torn down, blocking."""
    require_lab()
    yield
    left = close_all_now()
    assert left == 0, f"{left} lab(s) left open by the test, torn down now"
