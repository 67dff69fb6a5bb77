"""Fault: the origin node of three live rooms is SIGKILLed (loadtests.faults.originkill)."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import originkill


async def test_rooms_of_a_killed_origin_end_after_the_grace(tmp_path: Path) -> None:
    """Three hosts publish to node A, their audiences sit on node B; A is killed with
    kill -9: every room ends within the grace + 5 s, every listener hears origin_lost
    and room_ended, and no room stays live."""
    result = await originkill.run(tmp_path, rooms=3, viewers=2, grace_s=3.0)
    print(result)
    assert result["stuck_live"] == 0 and result["late_rooms"] == 0, result
    assert result["ended_within_s"] is not None
    assert result["ended_within_s"] <= result["grace_s"] + originkill.SLACK_S, result
    assert result["told_origin_lost"] == result["told_room_ended"] == 6, result
    assert result["crashes"] == 0, result
