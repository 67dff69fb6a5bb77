"""The lean forward path: one call per published frame sends it to every viewer of a track.

aiortc keeps doing what a viewer's connection needs besides RTP: signalling,
ICE (consent checks), DTLS, and RTCP through the viewer's ``RTCRtpSender``
(sender reports, and it receives NACK, PLI/FIR and receiver reports). The
sender's own RTP loop idles on an ``IdleTrack``. RTP of a relayed track goes
through its ``LeanForwarder`` instead: the relay calls it synchronously for
each published frame; the frame's RTP payloads (packetised once by the
relay) go to all started viewers in one ``media.rtpsend.send_frame`` call
(C when built): per viewer only the RTP header with that viewer's SSRC,
sequence numbers and timestamp origin, the negotiated one-byte header
extensions (mid; abs-send-time computed once per frame, as aiortc sends
them), SRTP with the viewer's context and one ``sendmmsg``.

What a browser also needs:

- sender reports: every ``SR_INTERVAL_S`` each viewer's sender is given the
  NTP time at which the frame it last sent arrived here with that frame's RTP
  timestamp (a true pair, also for GOP-cache frames sent late) and its packet
  and octet counts; aiortc sends them
  (``media.aiortc_seams.sender.set_sender_report``);
- NACK: packets are kept once in a shared history of ``HISTORY_PACKETS``
  (~6 s at 1.5 Mbit/s); each viewer maps its sequence numbers to history
  slots in a 512-entry ring; a NACKed packet is resent through the same path,
  as RTX (RFC 4588) where negotiated, at most ``RESEND_BUDGET`` per viewer per
  report interval;
- PLI/FIR: one rate-limited upstream keyframe request (the relay's);
- start: a viewer that connects while the relay holds a GOP gets it at once
  (keyframe first), else waits for the next keyframe (one is requested);
- a viewer whose socket refuses (EAGAIN/ENOBUFS) numbers the rest of that
  frame, sends none of it, and waits for the next keyframe (requested): it
  never holds a queue, and the others are not delayed;
- a new path: when the viewer's ICE nominates another pair (an ICE restart
  in place, ``media.icerestart``, or a renomination), its RTP follows at
  once to the new socket and address, numbered on, with the same SRTP
  context; a keyframe is asked for (what the old path lost).

Bounded: per viewer a fixed-size C struct (the ring), per track the history.
No task per viewer per frame; one report task per track.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aioice import Connection
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender

from media import rtpsend
from media.aiortc_seams import ice as ice_seams
from media.aiortc_seams import sender as sender_seams
from media.aiortc_seams import srtp as srtp_seams
from media.metrics import lean_forwarded
from media.relay import Relay

logger = logging.getLogger(__name__)

HISTORY_PACKETS = 1024
SR_INTERVAL_S = 0.5
RESEND_BUDGET = 128
NTP_EPOCH_OFFSET = 2_208_988_800
URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def ntp_time(unix: float) -> int:
    """64-bit NTP timestamp of a Unix time (RFC 3550 §4)."""
    return int((unix + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def abs_send_time(unix: float) -> int:
    """The 24-bit 6.18 fixed-point seconds of abs-send-time (as aiortc computes it)."""
    return (ntp_time(unix) >> 14) & 0xFFFFFF


@dataclass(frozen=True, slots=True)
class RtpParams:
    """What one answered m-section says a viewer receives: payload types, mid, extensions."""

    pt: int
    rtx_pt: int
    mid: str
    ext: bytes
    abs_offset: int


def extension_block(mid: str, mid_id: int | None, abs_id: int | None) -> tuple[bytes, int]:
    """One-byte header extensions (RFC 8285 §4.2) as aiortc writes them: mid, abs-send-time.

    Returns the block (``0xBEDE``, length in words, elements, zero padding) and
    the offset of the three abs-send-time bytes in it (-1 without).
    """
    body = b""
    abs_offset = -1
    if mid_id and mid:
        raw = mid.encode()
        if not 1 <= len(raw) <= 16 or not 1 <= mid_id <= 14:
            raise ValueError(f"mid {mid!r} (id {mid_id}) does not fit a one-byte extension")
        body += bytes([mid_id << 4 | (len(raw) - 1)]) + raw
    if abs_id:
        if not 1 <= abs_id <= 14:
            raise ValueError(f"abs-send-time id {abs_id} does not fit a one-byte extension")
        abs_offset = 4 + len(body) + 1
        body += bytes([abs_id << 4 | 2]) + b"\0\0\0"
    if not body:
        return b"", -1
    body += b"\0" * (-len(body) % 4)
    return b"\xbe\xde" + (len(body) // 4).to_bytes(2, "big") + body, abs_offset


def answered_params(answer: str | aiortc_sdp.SessionDescription) -> dict[str, RtpParams]:
    """``RtpParams`` per kind of our answer's first sending section of that kind."""
    out: dict[str, RtpParams] = {}
    for kind, params in section_params(answer).values():
        out.setdefault(kind, params)
    return out


def section_params(
    answer: str | aiortc_sdp.SessionDescription,
) -> dict[str, tuple[str, RtpParams]]:
    """(kind, ``RtpParams``) by mid of every sending section of our answer (its text,
    or parsed): a node's pull has one video section per simulcast layer."""
    if isinstance(answer, str):
        answer = aiortc_sdp.SessionDescription.parse(answer)
    out: dict[str, tuple[str, RtpParams]] = {}
    for m in answer.media:
        if m.kind not in ("audio", "video") or m.direction not in ("sendonly", "sendrecv"):
            continue
        codecs = m.rtp.codecs
        if not codecs or codecs[0].payloadType is None:
            continue
        pt = int(codecs[0].payloadType)
        rtx = [c for c in codecs if c.mimeType.lower().endswith("/rtx")
               and str(c.parameters.get("apt")) == str(pt)]  # fmt: skip
        ids = {x.uri: x.id for x in m.rtp.headerExtensions}
        ext, at = extension_block(m.rtp.muxId, ids.get(URI_MID), ids.get(URI_ABS_SEND_TIME))
        rtx_pt = int(rtx[0].payloadType) if rtx and rtx[0].payloadType is not None else -1
        out[m.rtp.muxId] = (m.kind, RtpParams(pt, rtx_pt, m.rtp.muxId, ext, at))
    return out


class IdleTrack(MediaStreamTrack):
    """What a lean viewer's ``RTCRtpSender`` reads: nothing, until stopped.

    Its RTP loop waits here for good; the forwarder sends the RTP.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._ended.set()


class LeanViewer:
    """One viewer of one lean-forwarded track (``LeanForwarder.subscribe``)."""

    def __init__(self, forwarder: LeanForwarder, kind: str) -> None:
        self.forwarder = forwarder
        self.relay = forwarder.relay
        self.kind = kind
        self.track = IdleTrack(kind)
        self.sender: RTCRtpSender | None = None
        self.params: RtpParams | None = None
        self.rtp: Any = None
        """The ``media.rtpsend.Viewer`` once started."""
        self.first_frame_keyframe: bool | None = None
        self.nacks = 0
        self.nack_misses = 0
        self.reroutes = 0
        """Times its RTP moved to a newly nominated pair."""
        self._route: tuple[int, tuple[Any, ...]] | None = None
        self._unwatch: Callable[[], None] | None = None
        self._budget = RESEND_BUDGET
        self.stopped = False

    @property
    def address(self) -> str:
        """Where its RTP goes (``host:port``; ``-`` before it starts), for logs."""
        return f"{self._route[1][0]}:{self._route[1][1]}" if self._route else "-"

    @property
    def skips(self) -> int:
        """Times its socket refused and it went back to waiting for a keyframe."""
        return int(self.rtp.refused) if self.rtp is not None else 0

    def bind(self, sender: RTCRtpSender) -> None:
        """Route the sender's PLI/FIR and NACKs here (before the connection starts)."""
        self.sender = sender
        sender_seams.route_keyframe_requests(sender, self.request_keyframe)
        sender_seams.route_retransmissions(sender, self._nack)
        self.forwarder.bound(self)

    def request_keyframe(self) -> None:
        self.forwarder.keyframe_wanted(self, "viewer")

    def start(self) -> bool:
        """Start sending once ICE and DTLS are up; False (and a log) if they are not."""
        if self.stopped or self.rtp is not None:
            return self.rtp is not None
        sender, params = self.sender, self.params
        if sender is None or params is None:
            return False
        dtls = sender.transport
        srtp = srtp_seams.tx_srtp(dtls)
        connection = ice_seams.ice_connection(dtls.transport.iceGatherer)
        route = ice_seams.nominated_route(connection)
        if srtp is None or route is None:
            logger.warning("lean viewer of %s: no SRTP context or ICE route yet", self.relay.name)
            return False
        sock, addr = route
        ssrc, rtx_ssrc = sender_seams.sender_ssrcs(sender)
        context, protect = srtp_seams.srtp_pointers(srtp)
        self.rtp = rtpsend.Viewer(
            sock.fileno(), addr, context, protect, srtp, ssrc, params.pt,
            random.getrandbits(32), random.randrange(1 << 15), params.ext, params.abs_offset,
            rtx_ssrc, params.rtx_pt, random.randrange(1 << 15),
        )  # fmt: skip
        self._route = (sock.fileno(), addr)
        moved = functools.partial(self._moved, connection)
        self._unwatch = ice_seams.on_nominated(connection, moved)
        self.forwarder.start(self)
        return True

    def _moved(self, connection: Connection) -> None:
        """ICE nominated another pair: send this viewer's RTP there from now on."""
        route = ice_seams.nominated_route(connection)
        if self.stopped or self.rtp is None or route is None:
            return
        sock, addr = route
        if (sock.fileno(), addr) == self._route:
            return
        try:  # called from aioice's check handling: it must not raise into it
            self.rtp.reroute(sock.fileno(), addr)
        except (OSError, ValueError) as exc:
            logger.warning(
                "lean viewer of %s: cannot move RTP to %s: %s", self.relay.name, addr, exc
            )
            return
        self._route = (sock.fileno(), addr)
        self.reroutes += 1
        logger.info("lean viewer of %s: RTP moved to %s", self.relay.name, addr)
        if self.kind == "video":
            self.forwarder.keyframe_wanted(self, "reroute")

    def _nack(self, seq: int) -> None:
        self.nacks += 1
        if self.rtp is None or self._budget <= 0:
            self.nack_misses += 1
            return
        self._budget -= 1
        if not self.forwarder.resend(self, seq):
            self.nack_misses += 1

    def report(self) -> None:
        """Hand the sender its next sender report's figures; refill the resend budget."""
        rtp, sender = self.rtp, self.sender
        self._budget = RESEND_BUDGET
        if rtp is None or sender is None or not rtp.packets:
            return
        sender_seams.set_sender_report(sender, rtp.last_ntp, rtp.last_ts, rtp.packets, rtp.octets)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._unwatch is not None:
            self._unwatch()
        self.forwarder.remove(self)
        self.track.stop()
        if self.rtp is not None:
            self.rtp.close()


class LeanForwarder:
    """Sends one relay's frames to its lean viewers (see the module doc)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._members: dict[LeanViewer, None] = {}
        self._sending: list[Any] = []
        self._history: list[tuple[bytes, int, bool] | None] = [None] * HISTORY_PACKETS
        self._next_index = 0
        self.frames = 0
        self.resent = 0
        self.refusals = 0
        self._closed = False
        relay.add_listener(self._on_frame)
        self._reporter = asyncio.get_running_loop().create_task(
            self._report_loop(), name=f"lean-sr-{relay.name}"
        )

    @property
    def viewers(self) -> int:
        return len(self._members)

    def bound(self, viewer: LeanViewer) -> None:
        """``viewer`` has its sender (a hook for forwarders that read its feedback)."""

    def keyframe_wanted(self, viewer: LeanViewer, reason: str) -> None:
        """``viewer`` lost a picture (PLI/FIR) or its path: ask the publisher (rate-limited)."""
        self.relay.request_keyframe(reason)

    def subscribe(self) -> LeanViewer:
        """A new viewer (sending once ``LeanViewer.start`` succeeds)."""
        if self._closed or self.relay.closed:
            raise MediaStreamError("relay is closed")
        viewer = LeanViewer(self, self.relay.kind)
        self._members[viewer] = None
        if not self.relay.has_keyframe:
            self.relay.request_keyframe("join")
        return viewer

    def start(self, viewer: LeanViewer) -> None:
        """Begin sending to ``viewer``: the cached GOP now, then every frame."""
        if viewer not in self._members or viewer.rtp is None:
            return
        gop = self.relay.gop_slots()
        if gop:
            viewer.first_frame_keyframe = True
            for slot in gop:
                self._send(slot, [viewer.rtp])
            viewer.report()  # its first sender report already carries a true pair
        else:
            viewer.first_frame_keyframe = True  # it waits for one
            self.relay.request_keyframe("join")
        self._sending.append(viewer.rtp)

    def remove(self, viewer: LeanViewer) -> None:
        self._members.pop(viewer, None)
        if viewer.rtp is not None and viewer.rtp in self._sending:
            self._sending.remove(viewer.rtp)

    def _on_frame(self, slot: Any) -> None:
        self.frames += 1
        if self._sending:
            self._send(slot, self._sending)
            lean_forwarded.inc(self.relay.kind)

    def _send(self, slot: Any, viewers: list[Any], relay: Relay | None = None) -> None:
        """Send ``slot`` (a frame of ``relay``, by default this forwarder's) to ``viewers``."""
        relay = relay or self.relay
        payloads, timestamp = relay.packed(slot)
        first = slot.history_index
        if first < 0 or first + len(payloads) <= self._next_index - HISTORY_PACKETS:
            first = self._next_index
            history, size, last = self._history, HISTORY_PACKETS, len(payloads) - 1
            for i, payload in enumerate(payloads):
                history[(first + i) % size] = (payload, timestamp, i == last)
            self._next_index += len(payloads)
            slot.history_index = first
        now = self.relay.clock.time()
        refused = rtpsend.send_frame(
            viewers, payloads, timestamp, first, slot.keyframe, abs_send_time(now),
            ntp_time(slot.arrived),
        )  # fmt: skip
        if refused:
            self.refusals += refused
            relay.stats.viewer_skips += refused
            relay.request_keyframe("refused")

    def resend(self, viewer: LeanViewer, seq: int) -> bool:
        """Resend the packet ``viewer`` got as ``seq`` if the history still has it."""
        index = viewer.rtp.lookup(seq)
        if index < 0 or index < self._next_index - HISTORY_PACKETS:
            return False
        entry = self._history[index % HISTORY_PACKETS]
        if entry is None:
            return False
        payload, timestamp, marker = entry
        now = abs_send_time(self.relay.clock.time())
        sent = bool(rtpsend.resend(viewer.rtp, seq, payload, timestamp, marker, now))
        if sent:
            self.resent += 1
            lean_forwarded.inc("resent")
        return sent

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(SR_INTERVAL_S)
            for viewer in list(self._members):
                viewer.report()
            try:
                self.reported()
            except Exception:  # a bug there must not stop every viewer's sender reports
                logger.exception("lean forwarder of %s: after reports", self.relay.name)

    def reported(self) -> None:
        """Called after each round of sender reports (every ``SR_INTERVAL_S``)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.relay.remove_listener(self._on_frame)
        self._reporter.cancel()
        for viewer in list(self._members):
            viewer.stop()
        self._history = [None] * HISTORY_PACKETS

    async def aclose(self) -> None:
        self.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reporter
