"""The lean receive path of a load-test WebRTC viewer: count RTP, decode nothing.

A *lean* viewer is a real WebRTC peer for the server: aiortc gathers its
(loopback-only) candidate, answers ICE checks, completes the DTLS handshake
and derives the SRTP keys, and keeps answering ICE consent checks for as long
as it lives. What it does not do is aiortc's per-packet receive work
(SRTP unprotect, ``RtpPacket.parse``, routing, jitter buffer, depacketising,
decoding), which costs far more than the server's send path and would make
the load side, not the server, the bottleneck.

The seam (aiortc 1.16 / aioice 0.13, checked by ``media.aiortc_seams``)
-----------------------------------------------------------------------
``RTCDtlsTransport`` (``aiortc/rtcdtlstransport.py``) runs one task,
``__run``, that loops on ``_recv_next``: it awaits the next datagram from
``RTCIceTransport._recv`` (= aioice ``Connection.recv``, an ``asyncio.Queue``
fed by ``StunProtocol.datagram_received``, which first tries to parse every
datagram as STUN) and dispatches on the first byte: 20–63 is DTLS, 128–191
is SRTP/SRTCP (``is_rtcp``: second byte 192–208), which it unprotects,
parses and routes to the ``RTCRtpReceiver``. So each received RTP packet
costs a failed STUN parse, a queue hand-off and task wake-up, an SRTP
unprotect, a parse and the receiver's jitter buffer before anything is
decoded.

``install_lean_receive`` cuts in below all of that, at the datagram: it
swaps the protocol of the ICE connection's UDP transport (public asyncio API
``transport.set_protocol``) for an ``RtpCounter``. Its
``datagram_received`` recognises SRTP (not SRTCP) by those same first two
bytes and handles it in place; every other datagram (STUN consent checks,
DTLS, SRTCP sender reports) is handed to aioice's own ``StunProtocol`` and
reaches ``RTCDtlsTransport._recv_next`` exactly as before, so ICE and DTLS
keep working and closing the connection still closes the socket through
aioice. SRTP leaves the 12-byte RTP header in clear (RFC 3711 §3.1), so the
counter reads the marker bit, payload type, sequence number and timestamp
without keys: it counts packets and bytes, counts frames (a frame ends at a
packet with the marker bit), counts sequence gaps as lost packets and, while
recording, keeps ``(RTP timestamp, arrival time)`` of each completed frame.
Nothing reaches the ``RTCRtpReceiver``, so it never builds receive
statistics and therefore sends no RTCP receiver reports and no NACKs
(aiortc only sends an RR with report blocks); no decoder is ever created
(the receiver's idle decoder thread just waits for the end). The server's
sender reports still arrive and are unprotected (about one a second).

A *probe* viewer is a stock aiortc peer that depacketises and decodes
(H.264 via PyAV) what it receives; it measures the time from its WHEP POST
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aioice.ice import StunProtocol
from aiortc import sdp as aiortc_sdp

from media.aiortc_seams import ice as ice_seams
from media.peers import MediaPeerConnection


class RtpCounter(asyncio.DatagramProtocol):
    """Counts SRTP packets by their clear header; passes everything else to aioice.

    ``video_pt`` is the negotiated video payload type (set once the answer
    is known); RTP of other payload types (RTX) is only counted in
    ``packets``/``bytes``. While ``recording``, each completed video frame
    appends its RTP timestamp to ``frame_ts`` and its arrival
    (``time.monotonic()``) to ``frame_at``.
    """

    __slots__ = ("_stun", "bytes", "first_frame_at", "frame_at", "frame_ts", "frames",
                 "last_seq", "lost", "packets", "recording", "video_pt")  # fmt: skip

    def __init__(self, stun: StunProtocol) -> None:
        self._stun = stun
        self.video_pt = -1
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.lost = 0
        self.last_seq = -1
        self.first_frame_at: float | None = None
        self.recording = False
        self.frame_ts: list[int] = []
        self.frame_at: list[float] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        first = data[0] if data else 0
        if first < 128 or first > 191 or len(data) < 12 or 192 <= data[1] <= 208:
            # STUN, DTLS or SRTCP: aioice's path, on to RTCDtlsTransport._recv_next.
            self._stun.datagram_received(data, addr)
            return
        self.packets += 1
        self.bytes += len(data)
        second = data[1]
        if second & 0x7F != self.video_pt:
            return
        seq = data[2] << 8 | data[3]
        last = self.last_seq
        if last >= 0:
            gap = (seq - last) & 0xFFFF
            if gap == 0 or gap >= 0x8000:  # duplicate or late: not a new packet
                return
            self.lost += gap - 1
        self.last_seq = seq
        if second & 0x80:  # marker bit: the last packet of a frame
            self.frames += 1
            if self.recording:
                self.frame_ts.append(int.from_bytes(data[4:8], "big"))
                self.frame_at.append(time.monotonic())
            elif self.first_frame_at is None:
                self.first_frame_at = time.monotonic()

    def error_received(self, exc: Exception) -> None:
        self._stun.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stun.connection_lost(exc)  # aioice's close() waits for this


def install_lean_receive(pc: MediaPeerConnection) -> RtpCounter:
    """Put an ``RtpCounter`` under ``pc``'s only ICE socket (after candidates are gathered).

    Call after ``setLocalDescription`` (which gathers) and before the
    connection is established. With loopback-only gathering there is exactly
    one host candidate, hence one socket; anything else is refused.
    """
    transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
    if len(transports) != 1:
        raise RuntimeError(f"expected one bundled transport, found {len(transports)}")
    (dtls,) = transports.values()
    protocols = ice_seams.stun_protocols(ice_seams.ice_connection(dtls.transport.iceGatherer))
    if len(protocols) != 1:
        raise RuntimeError(f"lean receive needs exactly one ICE socket, found {len(protocols)}")
    stun = protocols[0]
    counter = RtpCounter(stun)
    stun.transport.set_protocol(counter)
    return counter


def video_payload_type(answer_sdp: str) -> int:
    """The payload type the answerer sends video with (its first video codec)."""
    for m in aiortc_sdp.SessionDescription.parse(answer_sdp).media:
        if m.kind == "video" and m.rtp.codecs and m.rtp.codecs[0].payloadType is not None:
            return int(m.rtp.codecs[0].payloadType)
    raise ValueError("the answer has no video codec")
