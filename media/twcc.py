"""Transport-wide congestion control feedback (transport-cc): its wire format, pure.

When the answer negotiates the transport-wide sequence number extension and
``transport-cc`` feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01),
every RTP packet of the connection (all layers, RTX, padding probes, audio)
carries a number of one 16-bit space, and the receiver tells the sender which
arrived and when; the browser's send-side GCC then ramps its layers up in
about a second (on aiortc's REMB alone: 13-50 s).

``FeedbackRecorder``: ``record`` per packet, ``feedback`` the RTCP packets
(RTPFB, FMT 15, §3.1) for everything since the last call; ``encode_feedback``
and ``status_chunks`` write one packet. No I/O and no clock: the caller gives
the arrival times. ``media.transportcc`` negotiates it and sends the feedback.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

NOT_RECEIVED, SMALL_DELTA, LARGE_DELTA = 0, 1, 2
"""Packet status symbols (§3.1.1): a small delta is 0..255 ticks, a large one signed 16 bits."""
TICK_US = 250
"""Receive deltas count 250 µs (§3.1.5); the reference time counts 64 ms (256 ticks)."""
REFERENCE_TICKS = 256
MAX_RUN = 0x1FFF
"""A run length chunk's 13-bit run (§3.1.3)."""
MAX_STATUSES = 1000
MAX_RECEIVED = 300
"""Per feedback packet: at most this many statuses / received packets (< 1000 bytes)."""
HISTORY = 1024
"""Sequence numbers behind the newest whose arrival is kept: a packet that arrives later
than that after being reported lost is not reported again."""
MAX_WINDOW = 4096
"""Sequence numbers one round of feedback covers at most (a jump beyond is skipped)."""
_RTPFB, _FMT = 205, 15


def status_chunks(statuses: Sequence[int]) -> list[int]:
    """The 16-bit packet chunks (§3.1.3, §3.1.4) that encode ``statuses``, in order.

    A run of 14 or more of one symbol (or the rest being one symbol) is a run
    length chunk; else 14 symbols without a large delta are a one-bit status
    vector; else a run of 7 or more is a run; else a two-bit vector of 7.
    Vectors past the end are padded with "not received" (the status count says
    where the packets end).
    """
    chunks: list[int] = []
    i, n = 0, len(statuses)
    while i < n:
        symbol, run = statuses[i], 1
        while i + run < n and statuses[i + run] == symbol and run < MAX_RUN:
            run += 1
        window = statuses[i : i + 14]
        if run >= 14 or i + run == n or (run >= 7 and LARGE_DELTA in window):
            chunks.append(symbol << 13 | run)
            i += run
        elif LARGE_DELTA not in window:
            bits = sum(1 << (13 - k) for k, s in enumerate(window) if s)
            chunks.append(0x8000 | bits)
            i += len(window)
        else:
            pairs = sum(s << (12 - 2 * k) for k, s in enumerate(statuses[i : i + 7]))
            chunks.append(0xC000 | pairs)
            i += 7
    return chunks


def encode_feedback(
    sender_ssrc: int,
    media_ssrc: int,
    base_seq: int,
    reference: int,
    count: int,
    statuses: Sequence[int],
    deltas: Sequence[int],
) -> bytes:
    """One transport-cc feedback packet (§3.1), padded to 32 bits (RFC 3550 §6.4.1 padding).

    ``reference``: the reference time in 64 ms units (24 bits kept); ``count``:
    the feedback packet count (8 bits kept); ``deltas``: one per received
    status, in 250 µs ticks (a small delta one byte, a large one two, signed).
    """
    body = struct.pack(
        "!IIHHI", sender_ssrc, media_ssrc, base_seq & 0xFFFF, len(statuses),
        (reference & 0xFFFFFF) << 8 | (count & 0xFF),
    )  # fmt: skip
    chunks = status_chunks(statuses)
    body += struct.pack(f"!{len(chunks)}H", *chunks)
    received = [s for s in statuses if s != NOT_RECEIVED]
    if len(received) != len(deltas):
        raise ValueError(f"{len(received)} received statuses but {len(deltas)} deltas")
    for status, delta in zip(received, deltas, strict=True):
        body += struct.pack("!B" if status == SMALL_DELTA else "!h", delta)
    padding = -(len(body) + 4) % 4
    if padding:
        body += bytes(padding - 1) + bytes([padding])
    words = (len(body) + 4) // 4 - 1
    first = 0x80 | (0x20 if padding else 0) | _FMT
    return struct.pack("!BBH", first, _RTPFB, words) + body


class FeedbackRecorder:
    """Arrival times of one transport's packets by transport-wide sequence number, and
    the feedback that reports them (pure: the caller gives the times).

    Sequence numbers are unwrapped (16-bit wrap, either direction); duplicates
    keep their first arrival. Each ``feedback`` reports from the first number
    not yet reported to the newest received one: the missing ones as not
    received, reordered ones in sequence order (a negative delta is a large
    one). A packet that arrives after a feedback reported it lost (within
    ``HISTORY``) makes the next feedback start again at it, as libwebrtc's
    receiver does. Memory: at most ``HISTORY + MAX_WINDOW`` arrivals.
    """

    def __init__(self) -> None:
        self._arrivals: dict[int, int] = {}
        """Unwrapped sequence number → arrival in ticks of 250 µs."""
        self._newest: int | None = None
        self._start = 0
        """The first sequence number the next feedback reports."""
        self._count = 0
        self.media_ssrc = 0
        """The SSRC of the newest packet: the feedback names it as its media source."""
        self.late = 0
        """Packets that came too late to be reported (behind ``HISTORY``)."""

    def record(self, seq: int, arrival_us: int, ssrc: int) -> None:
        """Note that the packet with transport-wide sequence number ``seq`` arrived."""
        newest = self._newest
        if newest is None:
            unwrapped = self._start = seq
        else:
            unwrapped = newest + ((seq - newest + 0x8000) & 0xFFFF) - 0x8000
        if unwrapped in self._arrivals:
            return
        if newest is not None and unwrapped < self._start:
            if unwrapped <= newest - HISTORY:
                self.late += 1
                return
            self._start = unwrapped
        self.media_ssrc = ssrc
        self._arrivals[unwrapped] = arrival_us // TICK_US
        if newest is None or unwrapped > newest:
            self._newest = newest = unwrapped
        if newest - self._start >= MAX_WINDOW:
            self._start = newest - MAX_WINDOW + 1
        if len(self._arrivals) > HISTORY + MAX_WINDOW:
            self._forget(min(self._start, newest - HISTORY))

    @property
    def kept(self) -> int:
        """Arrivals held now (at most ``HISTORY + MAX_WINDOW``)."""
        return len(self._arrivals)

    def _forget(self, before: int) -> None:
        self._arrivals = {s: t for s, t in self._arrivals.items() if s >= before}

    def feedback(self, sender_ssrc: int) -> list[bytes]:
        """The feedback packets for everything recorded since the last call (maybe none).

        A new packet starts when one would hold more than ``MAX_STATUSES``
        statuses or ``MAX_RECEIVED`` received packets, or when a delta does
        not fit in 16 bits (more than ~8 s between two arrivals).
        """
        packets: list[bytes] = []
        if self._newest is None:
            return packets
        seq, end = self._start, self._newest
        while seq <= end:
            seq, packet = self._one(sender_ssrc, seq, end)
            if packet is not None:
                packets.append(packet)
        self._start = end + 1
        self._forget(end + 1 - HISTORY)
        return packets

    def _one(self, sender_ssrc: int, base: int, end: int) -> tuple[int, bytes | None]:
        """(the next base, the packet from ``base``: None if nothing arrived in its range)."""
        statuses: list[int] = []
        deltas: list[int] = []
        reference = previous = None
        seq = base
        while seq <= end and len(statuses) < MAX_STATUSES and len(deltas) < MAX_RECEIVED:
            ticks = self._arrivals.get(seq)
            if ticks is None:
                statuses.append(NOT_RECEIVED)
                seq += 1
                continue
            if reference is None or previous is None:
                reference = ticks // REFERENCE_TICKS
                previous = reference * REFERENCE_TICKS
            delta = ticks - previous
            if not -0x8000 <= delta <= 0x7FFF:
                break
            statuses.append(SMALL_DELTA if 0 <= delta <= 0xFF else LARGE_DELTA)
            deltas.append(delta)
            previous = ticks
            seq += 1
        if reference is None:
            return seq, None
        while statuses[-1] == NOT_RECEIVED:  # the next packet starts at the trailing losses
            statuses.pop()
            seq -= 1
        packet = encode_feedback(
            sender_ssrc, self.media_ssrc, base, reference, self._count, statuses, deltas
        )
        self._count += 1
        return seq, packet
