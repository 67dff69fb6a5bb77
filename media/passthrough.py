"""The seams that make aiortc forward encoded media instead of transcoding it.

The private aiortc state these seams read and write is reached through
``media.aiortc_seams`` (one accessor per seam, version-pinned and checked at
import); this module decides what to do with it.

Receiver side (``enable_passthrough``). aiortc's ``RTCRtpReceiver``
depayloads RTP, assembles frames in its jitter buffer, rebases their RTP
timestamp to 0 and puts ``(codec, JitterFrame)`` on a ``queue.Queue`` read by
a decoder thread, which calls ``get_decoder(codec)`` and pushes decoded frames
to the track. ``enable_passthrough`` replaces that queue, once per receiver and
before the receiver starts, by an inbox that hands each frame to a
``PassthroughDecoder`` on the event loop and puts the result, an ``av.Packet``
with the encoded bytes (Annex-B H.264, VP8, Opus), ``pts`` in
``1/clockRate`` (90 kHz video, 48 kHz Opus) and ``is_keyframe`` set, straight
on the track's queue. No decoder is ever created; the decoder thread aiortc
starts idles until the receiver stops and then ends the track as usual.

Upstream keyframe requests (``request_keyframe``) reuse aiortc's own path:
setting the receiver's decode-error flag makes it send a PLI (RFC 4585
§6.3.1) to the publisher's media SSRC with the next RTP packet.

Sender side (``install_sender_hooks``). ``RTCRtpSender`` packetises anything
that is not a decoded frame with its encoder's ``pack()``, creating that
encoder lazily; pre-setting it lets the relay hand every viewer's sender an
encoder whose ``pack()`` reuses payloads computed once per frame. A viewer's
PLI/FIR only sets a flag the *encode* branch reads, so the hook redirects
``_send_keyframe`` to the relay, which asks the publisher (rate-limited)."""

from __future__ import annotations

import fractions
import functools
import logging
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import av
from aiortc.codecs.base import Decoder, Encoder
from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender

from livecore.clock import SystemClock
from media.aiortc_seams import receiver as receiver_seams
from media.aiortc_seams import sender as sender_seams
from media.bitstream import H264ParameterSets, is_vp8_keyframe
from media.keyframes import KeyframeRequester

if TYPE_CHECKING:
    EncodedPacket: TypeAlias = av.Packet[Any]
    """An encoded frame: ``av.Packet`` with ``pts``, ``time_base`` and ``is_keyframe`` set."""

logger = logging.getLogger(__name__)

DEFAULT_MAX_BACKLOG = 64
"""Frames a receiver's track may hold unread before new ones are dropped."""

#: Packets each sender keeps for NACK/RTX repair. aiortc keeps 128 (< 0.5 s at
#: 2.5 Mbit/s); 512 covers ~3 s at 1.5 Mbit/s (~170 packets/s). A power of two
#: that divides 2^16, so sequence numbers wrap onto the same slots.
RTX_HISTORY_PACKETS = 512
sender_seams.extend_rtx_history(RTX_HISTORY_PACKETS)


def codec_family(mime_type: str) -> str:
    """Normalised MIME type, e.g. ``"video/h264"``; profiles do not matter to forwarding."""
    return mime_type.lower()


class PassthroughDecoder(Decoder):
    """An aiortc ``Decoder`` that returns the encoded frame instead of decoding it.

    ``decode(frame)`` returns one ``av.Packet``: the frame's bytes (for H.264
    with SPS/PPS prepended to an IDR that lacks them), ``pts`` = the rebased
    RTP timestamp, ``time_base`` = ``1/clockRate``, ``is_keyframe`` = whether a
    decoder can start on it (H.264 IDR with SPS/PPS; VP8 key frame; every
    audio frame). It keeps state (the last SPS/PPS), so use one per stream.
    """

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.mime_type = codec_family(codec.mimeType)
        self.time_base = fractions.Fraction(1, codec.clockRate)
        self.audio = self.mime_type.startswith("audio/")
        self._h264 = H264ParameterSets() if self.mime_type == "video/h264" else None

    def decode(self, encoded_frame: JitterFrame) -> list[EncodedPacket]:  # type: ignore[override]
        data = bytes(encoded_frame.data)
        if self._h264 is not None:
            data, keyframe = self._h264.complete(data)
        elif self.mime_type == "video/vp8":
            keyframe = is_vp8_keyframe(data)
        else:
            keyframe = self.audio
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = keyframe
        return [packet]


class _PassthroughInbox:
    """Stands in for a receiver's decoder ``queue.Queue`` (the only API used: put, get).

    ``put((codec, frame))`` is called by the receiver on the event loop: the
    frame goes through a ``PassthroughDecoder`` onto the track's queue, or is
    dropped when the track already holds ``max_backlog`` unread frames (then a
    video stream skips to its next keyframe and asks the publisher for one, at
    most once a second).
    ``put(None)`` (receiver stopping) releases the idle decoder thread blocked
    in ``get()``, which then ends the track the way aiortc always does.
    """

    def __init__(self, receiver: RTCRtpReceiver, max_backlog: int) -> None:
        self._receiver = receiver
        self._max_backlog = max_backlog
        self._stop: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._decoder: PassthroughDecoder | None = None
        self._codec_name: str | None = None
        self._skip_to_keyframe = False
        self._keyframes = KeyframeRequester(
            functools.partial(request_keyframe, receiver), SystemClock(), interval=1.0
        )
        self.dropped = 0
        #: Frames that came after packets given up (a skip to the next keyframe each).
        self.losses = 0

    def put(self, item: tuple[RTCRtpCodecParameters, JitterFrame] | None) -> None:
        if item is None:
            self._stop.put(None)
            return
        codec, frame = item
        if codec.name != self._codec_name or self._decoder is None:
            self._decoder = PassthroughDecoder(codec)
            self._codec_name = codec.name
        track_queue = receiver_seams.remote_track_queue(self._receiver.track)
        if getattr(frame, "after_loss", False) and not self._decoder.audio:
            # Packets before it were given up (MarkerJitterBuffer): its references
            # may be gone, so nothing is forwarded until a keyframe, asked for now.
            self.losses += 1
            self._skip_to_keyframe = True
            self._keyframes.request()
        for packet in self._decoder.decode(frame):
            if self._skip_to_keyframe and not packet.is_keyframe:
                self.dropped += 1
                continue
            if track_queue.qsize() >= self._max_backlog:
                self.dropped += 1
                if not self._decoder.audio:
                    self._skip_to_keyframe = True
                    self._keyframes.request()
                continue
            if self._skip_to_keyframe:
                self._skip_to_keyframe = False
                self._keyframes.keyframe_arrived()
            track_queue.put_nowait(packet)
        self._keyframes.poll()

    def get(self, block: bool = True, timeout: float | None = None) -> None:
        """Block the decoder thread until the receiver stops."""
        return self._stop.get(block, timeout)


#: How long a hole in the video sequence is waited for (NACK, RTX) before the
#: frames behind it go on without it: half a second of media time (RTP ticks at
#: 90 kHz). A hole that already spans longer (an outage) is not waited for.
MAX_HOLE_S = 0.5
VIDEO_CLOCK_RATE = 90_000
#: A video packet up to this many sequence numbers behind the jitter buffer's origin
#: is dropped as late; further behind, the stream restarted (a new SSRC of a simulcast
#: layer) and the buffer starts again from it. Chromium, once its transport-cc estimate
#: is high, pads its lowest layer with old packets resent on RTX (~140/s, up to ~100
#: behind on loopback; aiortc's buffer resets on one more than 100 behind).
MAX_LATE = 1000
_TS_HALF = 1 << 31


def _ts_after(a: int, b: int) -> int:
    """RTP ticks from ``b`` to ``a`` (32-bit wrap; negative if ``a`` is older)."""
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d >= _TS_HALF else d


class LossAwareFrame(JitterFrame):
    """A frame of the jitter buffer that knows whether packets were lost before it."""

    def __init__(self, data: bytes, timestamp: int, *, after_loss: bool) -> None:
        super().__init__(data, timestamp)
        self.after_loss = after_loss
        """Packets before this frame were given up: decoding it needs a keyframe first."""


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, completing a frame at its marker bit, and never
    stuck on a hole.

    Marker: the stock buffer knows a frame is complete only when the first packet
    of the *next* frame arrives — one frame interval (33 ms at 30 fps) of added
    latency on every forwarded frame. RTP's marker bit closes a video frame
    (RFC 6184 §5.1 for H.264, RFC 7741 §4.1 for VP8), so a frame whose packets
    are all there up to the marked one is handed on at once.

    Holes: the stock buffer waits for a missing packet until packets of a full
    buffer (512) have arrived behind it. After an outage the publisher's packets
    sent into the void are a hole of a few hundred, and a phone's encoder comes
    back at a low bitrate (its bandwidth estimate collapsed without feedback):
    512 packets took ~20 s, during which no video frame came out, while audio
    (no such buffer) played at once. Here a hole is waited for at most
    ``max_hole_s`` of media time (what arrived behind it, by RTP timestamp), and
    not at all when it already spans longer (the timestamps across it jump
    more): the frames before it are dropped, and the buffer goes on at the next
    frame boundary behind it (a packet following a marked one). The frames
    handed on after that are ``after_loss``: the pass-through inbox drops them
    until a keyframe and asks the publisher for one.
    """

    def __init__(
        self, capacity: int = 512, is_video: bool = True, *, max_hole_s: float = MAX_HOLE_S
    ) -> None:
        super().__init__(capacity=capacity, is_video=is_video)
        self._max_hole_ticks = round(max_hole_s * VIDEO_CLOCK_RATE)
        self._newest_ts: int | None = None
        self._last_out_ts: int | None = None
        self._lost = False
        #: Holes given up (for tests and metrics).
        self.holes_skipped = 0
        #: Packets dropped for coming behind the frames already handed on (``MAX_LATE``).
        self.late = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        ts = packet.timestamp
        if self._newest_ts is None or _ts_after(ts, self._newest_ts) > 0:
            self._newest_ts = ts
        if self._origin is not None:
            delta = (packet.sequence_number - self._origin) & 0xFFFF
            misorder = (self._origin - packet.sequence_number) & 0xFFFF
            if 0 < misorder < delta and misorder < MAX_LATE:
                # Behind what was handed on or given up: a retransmission too late, or
                # a browser's payload padding (old packets resent on RTX). The stock
                # buffer would reset on one more than 100 behind: drop it instead.
                self.late += 1
                return False, None
            # The stock buffer drops what it holds (a reset, or a jump past its size).
            if (misorder < delta and misorder >= MAX_MISORDER) or (
                misorder >= delta and delta >= self.capacity
            ):
                self._lost = True
        return super().add(packet)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        while self._origin is not None:
            packets: list[Any] = []
            timestamp = None
            for count in range(self.capacity):
                packet = self._packets[(self._origin + count) % self.capacity]
                if packet is None:
                    if not self._skip_hole(count):
                        return None
                    break  # the hole was given up: start again at the new origin
                if timestamp is None:
                    timestamp = packet.timestamp
                elif packet.timestamp != timestamp:  # the frame ended without a marker
                    self.remove(count)
                    return self._frame(packets, timestamp)
                packets.append(packet)
                if packet.marker:
                    self.remove(count + 1)
                    return self._frame(packets, timestamp)
            else:
                return None
        return None

    def _frame(self, packets: list[Any], timestamp: int) -> LossAwareFrame:
        data = b"".join(map(receiver_seams.rtp_payload, packets))
        frame = LossAwareFrame(data, timestamp, after_loss=self._lost)
        self._lost = False
        self._last_out_ts = timestamp
        return frame

    def _skip_hole(self, hole: int) -> bool:
        """The packet ``hole`` places after the origin is missing: give it up (drop
        what precedes the next frame boundary behind it; True) if it was waited for
        long enough, else wait (False)."""
        slots, cap, origin = self._packets, self.capacity, self._origin
        assert origin is not None
        before = self._last_out_ts
        for i in range(hole):  # the newest packet before the hole, if any
            packet = slots[(origin + i) % cap]
            if packet is not None:
                before = packet.timestamp
        first_after = resume = None
        for k in range(hole + 1, cap):
            packet = slots[(origin + k) % cap]
            if packet is None:
                continue
            if first_after is None:
                first_after = packet
            previous = slots[(origin + k - 1) % cap]
            if previous is not None and (previous.marker or previous.timestamp != packet.timestamp):
                resume = k
                break
        if first_after is None or resume is None or self._newest_ts is None:
            return False
        waited = _ts_after(self._newest_ts, first_after.timestamp)
        spans = _ts_after(first_after.timestamp, before) if before is not None else 0
        if waited < self._max_hole_ticks and spans < self._max_hole_ticks:
            return False
        self.remove(resume)
        self._lost = True
        self.holes_skipped += 1
        return True


class ImmediateAudioBuffer(JitterBuffer):
    """aiortc's audio jitter buffer without its 4-frame prefetch: each Opus packet at once.

    The stock audio buffer holds 4 frames (80 ms of 20 ms Opus) before handing
    the oldest on; a forwarder has no playout to smooth, and every RTP packet
    of Opus is one complete frame (RFC 7587 §4.2), so each new packet is
    passed on as it arrives. Duplicates and packets older than the newest
    passed on are dropped (the viewer's own jitter buffer reorders).
    """

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._newest: int | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        newest = self._newest
        if newest is not None and not 0 < (seq - newest) & 0xFFFF < 0x8000:
            return False, None
        self._newest = seq
        return False, JitterFrame(receiver_seams.rtp_payload(packet), packet.timestamp)


def enable_passthrough(receiver: RTCRtpReceiver, *, max_backlog: int = DEFAULT_MAX_BACKLOG) -> None:
    """Make ``receiver.track`` yield encoded ``av.Packet``s instead of decoded frames.

    Call once per receiver, after the transceiver exists and before the
    receiver starts (that is, before the connection is established: right
    after ``setRemoteDescription`` for an answerer). Raises ``RuntimeError``
    if the receiver already started. Calling it twice is harmless.
    """
    if is_passthrough(receiver):
        return
    if receiver_seams.receiver_started(receiver):
        raise RuntimeError("enable_passthrough must be called before the receiver starts")
    receiver_seams.set_receiver_frame_queue(receiver, _PassthroughInbox(receiver, max_backlog))
    track = receiver.track
    jitter = receiver_seams.receiver_jitter_buffer(receiver)
    if isinstance(jitter, JitterBuffer) and track and track.kind == "video":
        # Same capacity as aiortc's; frames complete on the marker bit.
        receiver_seams.set_receiver_jitter_buffer(receiver, MarkerJitterBuffer(capacity=512))
    elif isinstance(jitter, JitterBuffer) and track and track.kind == "audio":
        receiver_seams.set_receiver_jitter_buffer(receiver, ImmediateAudioBuffer())


def is_passthrough(receiver: RTCRtpReceiver) -> bool:
    """True once ``enable_passthrough`` was applied to ``receiver``."""
    return isinstance(receiver_seams.receiver_frame_queue(receiver), _PassthroughInbox)


def dropped_frames(receiver: RTCRtpReceiver) -> int:
    """Frames a pass-through receiver dropped because its track was not read."""
    inbox = receiver_seams.receiver_frame_queue(receiver)
    return inbox.dropped if isinstance(inbox, _PassthroughInbox) else 0


def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Ask the publisher behind ``receiver`` for a keyframe (PLI, RFC 4585 §6.3.1).

    Sent with the next video RTP packet that arrives, to that packet's SSRC;
    a no-op for audio. Not rate-limited here: callers (the relay) limit it.
    """
    receiver_seams.send_pli_with_next_packet(receiver)


def install_sender_hooks(
    sender: RTCRtpSender, *, encoder: Encoder, on_keyframe_request: Callable[[], None]
) -> None:
    """Give ``sender`` the ``encoder`` whose ``pack()`` it will use, and route PLI/FIR.

    Must be called before the sender starts (before the connection is
    established). ``on_keyframe_request`` is called, on the event loop, for
    every PLI or FIR the viewer sends.
    """
    if sender_seams.sender_started(sender):
        raise RuntimeError("install_sender_hooks must be called before the sender starts")
    sender_seams.set_sender_encoder(sender, encoder)
    sender_seams.route_keyframe_requests(sender, on_keyframe_request)
