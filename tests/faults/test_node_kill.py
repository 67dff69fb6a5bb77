"""Fault: the node holding the viewers is SIGKILLed mid-stream."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import nodekill


async def test_viewers_of_a_killed_node_miss_nothing(tmp_path: Path) -> None:
    """In flight: 20 viewers on node A, the host commenting through node B. A is
    SIGKILLed; every viewer reconnects to B with since and has every event once."""
    result = await nodekill.run(tmp_path, viewers=20, comments=150)
    print(result)
    assert result["recovered_clients"] == 20, result
    assert result["gaps"] == 0 and result["duplicated"] == 0, result
    assert result["crashes"] == 0
