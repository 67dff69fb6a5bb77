"""The order test modules reach the xdist workers: the longest first.

`make unit` runs the suite with ``--dist loadfile --no-loadscope-reorder``:
each worker takes the next whole module in collection order. xdist's own
order (most tests first) put one-test modules of 30 s last, so a worker
could idle while another finished a long module. Here the modules that take
longest (measured with ``pytest --durations=0``, their setup, calls and
teardown summed) come first, the rest after them in collection order; a
stale or missing entry only costs a little balance, never a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar

ROOT = Path(__file__).resolve().parent.parent

#: Longest first (seconds summed over a module's tests, one fresh-clone run of the suite
#: with two workers, 2026-12-07).
LONGEST = (
    "tests/loadtests/test_adaptive.py",  # the network lab's phase: one run of ~90 s
    "tests/signalling/routes/test_whip.py",  # 125 s
    "tests/signalling/routes/test_objectmedia.py",  # 102 s
    "tests/signalling/routes/test_pages_browser.py",  # 93 s
    "tests/signalling/routes/test_walk_browser.py",  # 87 s
    "tests/signalling/routes/test_recovery_browser.py",  # 76 s
    "tests/interop/test_gstreamer.py",  # 58 s
    "tests/signalling/hub/test_groupbuys.py",  # 56 s
    "tests/signalling/hub/test_bad_input.py",  # 45 s
    "tests/signalling/routes/test_whip_patch.py",  # 41 s
    "tests/signalling/hub/test_delivery.py",  # 39 s
    "tests/signalling/hub/test_channel.py",  # 39 s
    "tests/signalling/services/test_recording.py",  # 37 s
    "tests/clients/deploy/test_nginx.py",  # 34 s
    "tests/signalling/services/test_llhls.py",  # 33 s
    "tests/signalling/services/test_orders.py",  # 33 s
    "tests/signalling/routes/test_shopper_walk_browser.py",  # 31 s
    "tests/signalling/routes/test_reserve_pickup_browser.py",  # 29 s
    "tests/signalling/routes/test_page_security_browser.py",  # 29 s
    "tests/signalling/services/test_highlights.py",  # 27 s
    "tests/loadtests/test_fanout.py",  # 27 s
    "tests/signalling/routes/test_media_browser.py",  # 27 s
    "tests/loadtests/test_media.py",  # 26 s
    "tests/signalling/hub/handlers/test_flash.py",  # 24 s
    "tests/faults/test_http_roles.py",  # 23 s
    "tests/signalling/hub/handlers/test_draw.py",  # 23 s
    "tests/faults/test_slow_consumers.py",  # 22 s
    "tests/signalling/routes/test_guests.py",  # 22 s
    "tests/loadtests/test_highlights.py",  # 21 s
    "tests/faults/test_cluster_faults.py",  # 20 s
    "tests/signalling/routes/test_simulcast_browser.py",  # 19 s
    "tests/signalling/routes/test_iceservers.py",  # 19 s
    "tests/faults/test_roles.py",  # 18 s
    "tests/signalling/hub/test_churn.py",  # 18 s
    "tests/signalling/routes/test_whip_patch_browser.py",  # 17 s
    "tests/faults/test_fuzz.py",  # 16 s
    "tests/loadtests/test_groupbuy.py",  # 16 s
)
_RANK = {path: rank for rank, path in enumerate(LONGEST)}


class Located(Protocol):
    """A collected test (``pytest.Item``) as far as the order needs it: its file."""

    @property
    def path(self) -> Path: ...


T = TypeVar("T", bound=Located)


def longest_first(items: list[T]) -> None:
    """Sort ``items`` in place: LONGEST's modules in its order, then the rest as
    collected (a stable sort: the tests of a module keep their order)."""

    def rank(item: T) -> int:
        try:
            where = item.path.relative_to(ROOT).as_posix()
        except ValueError:
            return len(_RANK)
        return _RANK.get(where, len(_RANK))

    items.sort(key=rank)
