"""Fault: floods and malformed traffic each get their documented refusal."""

from __future__ import annotations

from pathlib import Path

from loadtests.faults import floods


async def test_each_flood_gets_its_refusal_and_the_node_serves(tmp_path: Path) -> None:
    """1,000 msgs/s (rate_limited then 4029), a 10 MiB frame (1009), a text frame
    (1003), garbage after the upgrade (1002), 100,000 headers (4xx), SDP bombs
    (400 bad_sdp / 413): a quiet viewer is served throughout; no fd leaks."""
    result = await floods.run(tmp_path)
    print(result)
    assert result["message_flood"]["rate_limited"] > 0
    assert result["message_flood"]["close"] == 4029
    assert result["big_frame"]["close"] == 1009
    assert result["text_frame"]["close"] == 1003
    assert result["garbage_after_upgrade"]["close"] == 1002
    assert 400 <= result["huge_headers"]["status"] < 500 or result["huge_headers"]["status"] == 0
    for status, code in result["sdp_bombs"].values():
        assert (status, code) in ((400, "bad_sdp"), (413, "body_too_large")), result
    assert result["serving"] and result["crashes"] == 0
    assert result["leaked_fds"] <= 2, result
