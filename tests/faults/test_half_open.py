"""Fault: half-open TCP connections (no FIN, no RST, no pong) are reaped in bounded
time and their state leaves with them."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import halfopen


async def test_half_open_connections_are_reaped(tmp_path: Path) -> None:
    """Five clients join room r2 and go silent: closed and dropped within the idle
    timeout + 1 s + 3 s (2 s of slack for a loaded machine); the node's connection,
    per-user, per-address and room entries return to their start; a quiet client
    that only answers pings stays connected meanwhile."""
    result = await halfopen.run(tmp_path)
    print(result)
    assert result["reaped_within_s"] is not None, result
    assert result["reaped_within_s"] <= result["bound_s"] + 2, result
    assert result["dropped"] == result["half_open"], result
    assert result["quiet_client_kept"] and result["quiet_client_silent_s"] > halfopen.IDLE_S
    assert result["state_back"] and result["leaked_fds"] == 0 and result["crashes"] == 0, result
