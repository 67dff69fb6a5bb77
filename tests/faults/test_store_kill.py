"""Fault: Valkey SIGKILLed and restarted while two nodes take comments, votes, joins."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import storekill


async def test_valkey_killed_mid_stream_loses_nothing(tmp_path: Path) -> None:
    """In flight: 10 viewers on two nodes voting, joining and commenting. Valkey is
    SIGKILLed and restarted: refusals are store_unavailable, /healthz says 503
    meanwhile, and every acknowledged action is there once afterwards."""
    result = await storekill.run(tmp_path, viewers=10, comments=40)
    print(result)
    assert result["lost"] == 0 and result["duplicated"] == 0, result
    assert result["silent"] == 0, result
    assert result["healthz_503_during_outage"], result
    assert result["refused"] > 0, "the outage was not felt: nothing was in flight"
    assert storekill.crashes() == 0
