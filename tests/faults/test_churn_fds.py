"""Fault: connection churn while a room streams keeps no fds or memory."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import churn


async def test_connection_churn_leaks_nothing(tmp_path: Path) -> None:
    """1,000 connects (32 at a time) while the host comments: the node's fds return
    to their level (± a store-pool connection), RSS within 32 MiB, and the watching
    viewer gets every comment."""
    result = await churn.run(tmp_path, connects=1000)
    print(result)
    assert result["leaked_fds"] <= 2 and result["crashes"] == 0, result  # pool noise
    assert result["rss_growth_mb"] < 32, result
