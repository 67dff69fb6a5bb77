"""A transport-cc feedback decoder for the tests (draft-holmer-rmcat-transport-wide-cc-
extensions-01 §3.1), written apart from ``media.twcc``'s encoder."""

from __future__ import annotations

import struct

NOT_RECEIVED, SMALL_DELTA = 0, 1


def decode(packet: bytes) -> tuple[int, int, int, list[tuple[int, int | None]]]:
    """(media ssrc, reference time, fb count, [(seq, arrival in 250 µs ticks or None)])."""
    first, pt, words = struct.unpack("!BBH", packet[:4])
    assert first >> 6 == 2 and first & 0x1F == 15 and pt == 205
    assert len(packet) == (words + 1) * 4
    if first & 0x20:
        packet = packet[: len(packet) - packet[-1]]
    _, media, base, count, word = struct.unpack("!IIHHI", packet[4:20])
    reference, fb_count = word >> 8, word & 0xFF
    statuses: list[int] = []
    pos = 20
    while len(statuses) < count:
        (chunk,) = struct.unpack("!H", packet[pos : pos + 2])
        pos += 2
        if not chunk & 0x8000:
            statuses += [chunk >> 13 & 3] * (chunk & 0x1FFF)
        elif not chunk & 0x4000:
            statuses += [chunk >> (13 - k) & 1 for k in range(14)]
        else:
            statuses += [chunk >> (12 - 2 * k) & 3 for k in range(7)]
    statuses = statuses[:count]
    at = reference * 256
    out: list[tuple[int, int | None]] = []
    for i, status in enumerate(statuses):
        seq = (base + i) & 0xFFFF
        if status == NOT_RECEIVED:
            out.append((seq, None))
            continue
        fmt = "!B" if status == SMALL_DELTA else "!h"
        (delta,) = struct.unpack(fmt, packet[pos : pos + struct.calcsize(fmt)])
        pos += struct.calcsize(fmt)
        at += delta
        out.append((seq, at))
    assert pos <= len(packet)
    return media, reference, fb_count, out
