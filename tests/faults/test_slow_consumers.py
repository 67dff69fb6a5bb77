"""Fault: readers that stop, or read a byte a second, are cut off (4008) in bounded
time and memory; the room's other viewers get everything, on time."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import slow


async def test_slow_readers_are_cut_off_and_the_room_is_unharmed(tmp_path: Path) -> None:
    """Two readers that stop after hello and two that read 1 byte/s through a 4 KiB
    window, in a room streaming ~25 KB/s to 8 viewers: all four closed as slow
    consumers within 25 s (drain timer 2 s), their connection and per-user state
    gone, node RSS within 16 MiB; the viewers lose nothing, p99 within 2× + 100 ms."""
    result = await slow.run(tmp_path)
    print(result)
    assert result["cut_off"] == result["slow_clients"] == 4, result
    assert result["cut_within_s"] is not None and result["state_back"], result
    assert result["lost"] == 0 and result["gaps"] == 0 and result["crashes"] == 0, result
    assert result["peak_rss_growth_mb"] < 16 and result["leaked_fds"] == 0, result
    quiet, during = result["p99_ms"]["quiet"], result["p99_ms"]["slow"]
    assert during <= 2 * quiet + 100, result  # a shared 2-core machine: ms of noise
