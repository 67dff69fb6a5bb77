"""Fault: connection churn while a room streams keeps no fds, memory or state, and
the room's viewers are served as before."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import churn


async def test_connection_churn_leaks_nothing(tmp_path: Path) -> None:
    """500 connects (32 at a time, from their own process) while the host comments
    to 8 viewers: the node's fds return to their level (± a store-pool connection),
    RSS within 32 MiB, no structure grows; every viewer gets every comment, with a
    p99 during the churn within 2× the quiet phase's + 100 ms (a shared machine)."""
    result = await churn.run(tmp_path, connects=500, quiet_s=2.0)
    print(result)
    assert result["connects"] == 500 and result["failed_connects"] == 0, result
    assert result["leaked_fds"] <= 2 and result["crashes"] == 0, result  # pool noise
    assert result["rss_growth_mb"] < 32 and result["structures_grown"] == [], result
    assert result["lost"] == 0 and result["gaps"] == 0, result
    quiet, during = result["p99_ms"]["quiet"], result["p99_ms"]["churn"]
    assert during <= 2 * quiet + 100, result


async def test_churn_against_two_workers_leaks_nothing(tmp_path: Path) -> None:
    """The same churn against ``serve --workers 2`` (the benchmark's short form of its
    side-by-side run): no fd, memory or state left in either worker, every viewer
    gets every comment."""
    result = await churn.run(tmp_path, connects=300, quiet_s=2.0, workers=2)
    print(result)
    assert result["workers"] == 2
    assert result["connects"] == 300 and result["failed_connects"] == 0, result
    assert result["leaked_fds"] <= 4 and result["crashes"] == 0, result  # two store pools
    assert result["rss_growth_mb"] < 64 and result["structures_grown"] == [], result
    assert result["lost"] == 0 and result["gaps"] == 0, result
