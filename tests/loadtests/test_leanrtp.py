"""The lean RTP counter reads the clear RTP header: packets, frames, losses."""

from __future__ import annotations

from aioice.ice import StunProtocol

from loadtests.leanrtp import RtpCounter


def rtp(seq: int, ts: int, *, marker: bool, pt: int = 96) -> bytes:
    return bytes([0x80, (0x80 if marker else 0) | pt]) + seq.to_bytes(2, "big") + \
        ts.to_bytes(4, "big") + b"\x00\x00\x00\x01" + b"x" * 20  # fmt: skip


async def test_counts_frames_and_sequence_gaps() -> None:  # aioice wants a running loop
    """A marker bit ends a frame; a sequence gap is lost packets; RTX is only counted."""
    counter = RtpCounter(StunProtocol(None))  # type: ignore[arg-type]
    counter.video_pt = 96
    counter.recording = True
    for seq, ts, marker in [(65534, 0, False), (65535, 0, True), (2, 3000, True)]:
        counter.datagram_received(rtp(seq, ts, marker=marker), ("127.0.0.1", 1))
    counter.datagram_received(rtp(7, 0, marker=True, pt=97), ("127.0.0.1", 1))
    assert counter.packets == 4
    assert counter.frames == 2
    assert counter.lost == 2  # 0 and 1 never came (across the wrap)
    assert counter.frame_ts == [0, 3000]
