"""Transport-wide congestion control feedback to WHIP publishers (transport-cc).

A browser that publishes estimates its own uplink with send-side GCC when the
answer negotiates the transport-wide sequence number header extension and the
``transport-cc`` RTCP feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01):
every RTP packet on the connection (every simulcast layer, RTX, padding probes,
audio) carries one 16-bit sequence number of one space, and the receiver tells
the sender, a few times a second, which of them arrived and when. With REMB
only (aiortc's estimator on abs-send-time) Chromium ramps its top layer up in
13-50 s; with this feedback it ramps in seconds.

``FeedbackRecorder`` is the pure part: ``record(seq, arrival_us, ssrc)`` per
packet, ``feedback(sender_ssrc)`` the RTCP packets (RTPFB, FMT 15, §3.1 of the
draft) reporting everything recorded since the last call. ``TransportFeedback``
is the adapter: it watches the publisher's DTLS transport
(``media.aiortc_seams.srtp.observe_rtp``) and sends the feedback every
``interval`` seconds. ``negotiate`` puts the extension and the feedback type in
the answer, for the sections whose offer has both (else REMB stays the only
feedback, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable, Sequence

from aiortc import sdp as aiortc_sdp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from media import metrics
from media.aiortc_seams import receiver as receiver_seams
from media.aiortc_seams import srtp as dtls_seams

URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
FEEDBACK = "transport-cc"
"""The ``a=rtcp-fb`` type that asks for this feedback."""

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


class TransportFeedback:
    """Sends transport-cc feedback on one publisher connection (its DTLS transport).

    Starts watching the transport's RTP at once (its header extension ``ext_id``
    parsed from the first packet on) and sends what arrived every
    ``interval`` seconds (nothing when nothing arrived); ``close()`` stops both.
    ``sender_ssrc()`` names our side of the connection (0 until it is known).
    """

    def __init__(
        self,
        dtls: RTCDtlsTransport,
        ext_id: int,
        sender_ssrc: Callable[[], int | None],
        *,
        interval: float = 0.05,
    ) -> None:
        self.recorder = FeedbackRecorder()
        dtls_seams.parse_header_extension(dtls, URI_TRANSPORT_CC, ext_id)
        self.sent = 0
        self._dtls = dtls
        self._sender_ssrc = sender_ssrc
        self._interval = interval
        self._unwatch = dtls_seams.observe_rtp(dtls, self._observe)
        self._task: asyncio.Task[None] | None = asyncio.ensure_future(self._run())

    def _observe(self, packet: RtpPacket) -> None:
        seq = packet.extensions.transport_sequence_number
        if seq is not None:
            self.recorder.record(seq, time.monotonic_ns() // 1000, packet.ssrc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for data in self.recorder.feedback(self._sender_ssrc() or 0):
                if not await dtls_seams.send_rtcp(self._dtls, data):
                    break
                self.sent += 1
                metrics.transport_cc.inc("feedback")

    @property
    def closed(self) -> bool:
        return self._task is None

    async def close(self) -> None:
        """Stop watching and sending (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._unwatch()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def offers_transport_cc(section: aiortc_sdp.MediaDescription) -> int | None:
    """The extension id of the transport-wide sequence number, if ``section`` offers it
    and the ``transport-cc`` feedback on one of its codecs (else None)."""
    ext = next((x.id for x in section.rtp.headerExtensions if x.uri == URI_TRANSPORT_CC), None)
    if ext is None or not 1 <= ext <= 14:
        return None
    wanted = any(fb.type == FEEDBACK for c in section.rtp.codecs for fb in c.rtcpFeedback)
    return ext if wanted else None


def negotiate(transceiver: RTCRtpTransceiver, section: aiortc_sdp.MediaDescription) -> int | None:
    """Answer ``section``'s transport-cc offer on ``transceiver``: the extension (the
    offer's id) and ``a=rtcp-fb:<pt> transport-cc`` on each codec that offered it.

    Call after ``setRemoteDescription`` and before ``createAnswer``. Returns the
    extension id, or None (and nothing changed) when the section does not offer both.
    """
    ext = offers_transport_cc(section)
    if ext is None:
        return None
    receiver_seams.add_header_extensions(
        transceiver, [RTCRtpHeaderExtensionParameters(id=ext, uri=URI_TRANSPORT_CC)]
    )
    offered = {c.payloadType for c in section.rtp.codecs if FEEDBACK in _types(c.rtcpFeedback)}
    for codec in receiver_seams.negotiated_codecs(transceiver):
        if codec.payloadType in offered and FEEDBACK not in _types(codec.rtcpFeedback):
            codec.rtcpFeedback = [*codec.rtcpFeedback, RTCRtcpFeedback(type=FEEDBACK)]
    return ext


def _types(feedback: Sequence[RTCRtcpFeedback]) -> set[str]:
    return {fb.type for fb in feedback if fb.parameter is None}
