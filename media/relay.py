"""Publisher-side fan-out of encoded frames: one source track, many viewer tracks.

A ``Relay`` reads encoded ``av.Packet``s (from a pass-through receiver, or any
track of encoded frames) and serves them to ``RelayTrack``s, aiortc
``MediaStreamTrack``s whose ``recv()`` returns those packets; an
``RTCRtpSender`` packetises them with ``pack()`` and never encodes.

Memory is bounded by the relay, not by its viewers. Frames live once, in a
shared window (``media.relaywindow.FrameWindow``): the current GOP (from the
last keyframe, at most ``max_gop_frames`` / ``max_gop_bytes``) plus the last
``max_lag_frames`` frames. A viewer is only a cursor into it, so a stalled
viewer holds no frames and costs the others nothing.

Per-viewer contract (``RelayTrack.recv``):

- the first frame is a keyframe: the cached GOP's (a join starts at once,
  bursting the GOP) or, without one, the next to arrive (a keyframe is asked
  for);
- a viewer may be behind the newest frame by at most ``max_lag_frames`` frames
  plus the backlog it (re)started with; beyond that it skips to the next
  keyframe after its position: the cached one if it is newer, else the next to
  arrive (and a keyframe is asked for);
- ``pts`` strictly increases (the relay rebases a source whose pts repeat or
  go back, once for all viewers).

Keyframe requests to the publisher go through one callback, at most one per
``keyframe_request_interval`` (1 s, as mediasoup); a request inside the
interval is remembered and sent when it ends unless a keyframe came first.

Per-frame work is done once for all viewers: each frame is packetised (RTP
payloads computed) the first time any viewer's sender needs it; the others
reuse the payloads (``SharedPacker``). What remains per viewer is aiortc's
send path: RTP header, SRTP, socket send.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame

from livecore.clock import Clock, SystemClock
from media.keyframes import KeyframeRequester
from media.metrics import codec_ops
from media.packetise import Payloads, SharedPacker, make_packetiser
from media.relaystate import RelayLimits, RelayStats, ViewerPosition
from media.relaywindow import FrameWindow, Skip, Slot

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

__all__ = ["Relay", "RelayLimits", "RelayStats", "RelayTrack", "SharedPacker", "ViewerPosition"]

logger = logging.getLogger(__name__)


#: The longest gap between two frames of a track taken as time passing (see
#: ``Relay._rebase_pts``); ICE consent expires a silent publisher after 30 s.
MAX_GAP_S = 60


class Relay:
    """Fan-out of one encoded source to many ``RelayTrack``s (see the module doc).

    ``kind`` is ``"audio"`` or ``"video"``; ``codec`` the source's MIME type
    (``"video/H264"``, ``"video/VP8"``, ``"audio/opus"``), which every viewer
    must have negotiated. ``request_keyframe`` asks the publisher for a
    keyframe (for a pass-through receiver: ``passthrough.request_keyframe``).
    Use from one event loop only.
    """

    def __init__(
        self,
        kind: str,
        codec: str,
        *,
        request_keyframe: Callable[[], None] | None = None,
        limits: RelayLimits | None = None,
        clock: Clock | None = None,
        name: str = "",
        origin: Callable[[], float] | None = None,
    ) -> None:
        self.kind = kind
        self._origin = origin
        """Simulcast: seconds on a clock the publisher's layers share, read at this relay's
        first frame; its pts start there, so every layer's timestamps line up."""
        self.codec = codec
        self.name = name
        self.limits = limits or RelayLimits()
        self.stats = RelayStats()
        self._packetise = make_packetiser(codec)
        self._keyframes = KeyframeRequester(
            request_keyframe if kind == "video" else None,
            clock or SystemClock(),
            self.limits.keyframe_request_interval,
        )
        self._window = FrameWindow(self.limits, self.stats)
        self._pulse = asyncio.Event()
        self._subscribers: set[RelayTrack] = set()
        self._listeners: list[Callable[[Slot], None]] = []
        self.clock: Clock = clock or SystemClock()
        self._closed = False
        self.paused = False
        """Dynacast: a simulcast layer nobody watches asks the publisher for no keyframe."""
        self.recorded = False
        """Set by whoever records this layer: it is never paused (its segments need keyframes)."""
        self._task: asyncio.Task[None] | None = None
        self._pts_offset = 0
        self._last_pts: int | None = None
        self._last_step: int | None = None

    # -- source side -------------------------------------------------------

    def start(self, source: MediaStreamTrack) -> asyncio.Task[None]:
        """Read ``source`` until it ends, publishing every packet; then close."""
        if self._task is not None:
            raise RuntimeError("relay already started")
        self._task = asyncio.create_task(self._pump(source), name=f"relay-{self.name}")
        return self._task

    async def _pump(self, source: MediaStreamTrack) -> None:
        try:
            while not self._closed:
                item = await source.recv()
                if isinstance(item, Frame):
                    # The receiver decoded: pass-through was not installed.
                    codec_ops.inc(f"decode:{self.codec}")
                    self.stats.decoded_frames_refused += 1
                    continue
                self.publish(item)
        except MediaStreamError:
            pass
        finally:
            self.close()

    def publish(self, packet: EncodedPacket) -> None:
        """Add one encoded frame (``pts`` and ``time_base`` set) for every viewer."""
        if self._closed:
            return
        if packet.pts is None or packet.time_base is None:
            raise ValueError("relay needs packets with pts and time_base")
        self._rebase_pts(packet, packet.pts)
        keyframe = self.kind == "audio" or packet.is_keyframe
        slot = self._window.append(packet, keyframe, self.clock.time())
        if keyframe:
            self._keyframes.keyframe_arrived()
        self._keyframes.poll()
        for listener in self._listeners:
            listener(slot)
        self._wake()

    def add_listener(self, listener: Callable[[Slot], None]) -> None:
        """Call ``listener(slot)`` synchronously for every frame published (the lean path)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Slot], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def gop_slots(self) -> list[Slot]:
        """The cached GOP, keyframe first (empty without one): what a new viewer starts with."""
        return self._window.gop_slots()

    def _rebase_pts(self, packet: EncodedPacket, source_pts: int) -> None:
        last = self._last_pts
        if last is None and self._origin is not None:
            self._pts_offset = round(fractions.Fraction(self._origin()) / packet.time_base)
            self._pts_offset -= source_pts
        pts = source_pts + self._pts_offset
        if last is not None:
            # Back in time, or a jump no live source makes (a new SSRC for a simulcast
            # layer, or aiortc's TimestampMapper taking a late frame for a wrap: +2^32):
            # numbered on from the last frame. A publisher silent for longer than
            # MAX_GAP_S has lost its session to consent expiry long before.
            if pts <= last or (pts - last) * packet.time_base > MAX_GAP_S:
                step = self._last_step or self._default_step(packet)
                self._pts_offset += last + step - pts
                pts = last + step
                self.stats.pts_rebases += 1
            else:
                self._last_step = min(pts - last, 4 * self._default_step(packet))
        packet.pts = pts
        self._last_pts = pts

    def _default_step(self, packet: EncodedPacket) -> int:
        seconds = fractions.Fraction(1, 50) if self.kind == "audio" else fractions.Fraction(1, 30)
        return max(1, round(seconds / packet.time_base))

    # -- keyframes ---------------------------------------------------------

    def request_keyframe(self, reason: str) -> bool:
        """Ask the publisher for a keyframe (rate-limited); True if sent now."""
        self.stats.keyframe_requests += 1
        self.stats.request_reasons[reason] = self.stats.request_reasons.get(reason, 0) + 1
        if self.paused:
            return False
        sent = self._keyframes.request()
        self.stats.keyframe_requests_sent = self._keyframes.sent
        return sent

    # -- viewer side -------------------------------------------------------

    def subscribe(self) -> RelayTrack:
        """A new viewer track; its first frame will be a keyframe."""
        if self._closed:
            raise MediaStreamError("relay is closed")
        track = RelayTrack(self)
        self._subscribers.add(track)
        if not self._window.has_keyframe:
            self.request_keyframe("join")
        return track

    def unsubscribe(self, track: RelayTrack) -> None:
        """Forget ``track`` (``RelayTrack.stop`` calls it)."""
        self._subscribers.discard(track)
        self._wake()

    def take(self, track: RelayTrack) -> Slot | None:
        """``track``'s next frame, or None if it must wait; applies the lag rule.

        Moves the track's ``position``; ``RelayTrack.recv`` is the caller.
        """
        slot, skip = self._window.take(track.position)
        if skip is not Skip.NONE:
            track.skips += 1
            self.stats.viewer_skips += 1
            if skip is Skip.TO_NEXT_KEYFRAME:
                self.request_keyframe("lagging")
        return slot

    async def next_frame_published(self) -> None:
        """Wait until a frame is published, a viewer leaves or the relay closes."""
        await self._pulse.wait()

    def packed(self, slot: Slot) -> Payloads:
        """RTP payloads and timestamp of ``slot``, computed once for all viewers."""
        if slot.payloads is None:
            slot.payloads = self._packetise(slot.packet, slot.seq)
            self.stats.packetised += 1
        return slot.payloads

    def packetise(self, packet: EncodedPacket) -> Payloads:
        """RTP payloads of a packet that is not (or no longer) in the window."""
        self.stats.packetised += 1
        return self._packetise(packet, self._window.head)

    def _wake(self) -> None:
        self._pulse.set()
        self._pulse.clear()

    # -- state -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def head(self) -> int:
        """Sequence number of the newest frame published (-1 before the first)."""
        return self._window.head

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def buffered_frames(self) -> int:
        """Frames held for viewers (the whole media memory of this relay)."""
        return self._window.frames

    @property
    def buffered_bytes(self) -> int:
        return self._window.bytes

    @property
    def has_keyframe(self) -> bool:
        """True when a new viewer can start at once from the cached GOP."""
        return self._window.has_keyframe

    def close(self) -> None:
        """End every viewer track (their ``recv`` raises ``MediaStreamError``) and stop."""
        if self._closed:
            return
        self._closed = True
        self._window.clear()
        for track in list(self._subscribers):
            track.stop()
        self._wake()
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()


class RelayTrack(MediaStreamTrack):
    """One viewer's track of a ``Relay``: ``recv()`` returns shared encoded packets.

    Attach it to an ``RTCRtpSender`` together with ``SharedPacker(track)``
    (``passthrough.install_sender_hooks``) so payloads are computed once.
    ``stop()`` unsubscribes.
    """

    def __init__(self, relay: Relay) -> None:
        super().__init__()
        self.kind = relay.kind
        self.relay = relay
        self.last_slot: Slot | None = None
        self.frames_sent = 0
        self.skips = 0
        self.first_frame_keyframe: bool | None = None
        self.position = ViewerPosition()
        self._burst = 0

    @property
    def codec(self) -> str:
        return self.relay.codec

    @property
    def label(self) -> str:
        return self.relay.name

    def payloads(self, packet: EncodedPacket) -> Payloads:
        """RTP payloads of ``packet``: cached by the relay when it is the frame just taken."""
        slot = self.last_slot
        if slot is not None and slot.packet is packet:
            return self.relay.packed(slot)
        return self.relay.packetise(packet)

    async def recv(self) -> EncodedPacket:
        relay = self.relay
        while True:
            if self.readyState != "live" or relay.closed:
                raise MediaStreamError
            slot = relay.take(self)
            if slot is None:
                self._burst = 0
                await relay.next_frame_published()
                continue
            self.last_slot = slot
            if self.first_frame_keyframe is None:
                self.first_frame_keyframe = slot.keyframe
            self.frames_sent += 1
            relay.stats.frames_out += 1
            self._burst += 1
            if self._burst >= relay.limits.fair_burst:
                # Catching up (frames ready back to back): let other viewers run.
                self._burst = 0
                await asyncio.sleep(0)
            return slot.packet

    def request_keyframe(self) -> None:
        """The viewer lost a picture (PLI/FIR): ask the publisher, rate-limited."""
        self.relay.request_keyframe("viewer")

    @property
    def lag(self) -> int:
        """Frames published that this viewer has not taken yet."""
        next_seq = self.position.next_seq
        if next_seq is None:
            return 0
        return max(0, self.relay.head - next_seq + 1)

    def stop(self) -> None:
        super().stop()
        self.relay.unsubscribe(self)
