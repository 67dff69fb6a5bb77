"""The lean forward path for a simulcast publisher: each viewer on the layer its link carries.

A ``LayeredForwarder`` listens to every layer's relay (``PublisherSession.layers``)
and keeps, per layer, the list of viewers on it; a frame of a layer goes to
that list in one ``media.rtpsend.send_frame`` call, exactly as the
single-layer ``LeanForwarder`` does (whose history, NACK and sender-report
machinery it inherits: the history is shared, so a NACK after a switch finds
the packet of whichever layer carried that sequence number).

Per viewer:

- feedback: its sender's RTCP (``media.aiortc_seams.sender.observe_rtcp``):
  REMB naming its SSRC and the loss fraction of its receiver reports feed its
  ``LayerSelector``, asked every ``SR_INTERVAL_S`` with the layers' measured
  bitrates (low to high);
- switching: a new target is *pending* until a keyframe of that layer arrives
  (one is asked for that layer only: a PLI to its SSRC, rate-limited per
  layer, asked again each round until it lands); the selector judges the
  viewer as on its target meanwhile; the viewer keeps its old layer until
  then, and moves before that keyframe is sent. Its sequence numbers go on
  (the viewer numbers its own packets) and its timestamps go on (the layers'
  pts share one clock, ``Relay(origin=...)``);
- probing: while its selector probes the next layer up, the viewer is padded
  (``padding_bps``), paced by its layer's frames, with RTX copies of its own
  newest packets;
- NACK: a packet from before its last move is not resent (the keyframe it
  moved on replaced it), and its resends per round stay under
  ``RESEND_SHARE`` of its estimate;
- PLI/FIR: served from its layer's cached GOP when that GOP is short
  (``GOP_SERVE_MAX`` frames), the layer is not quiet (a stale GOP) and none
  was served to it in the last second; only otherwise is the publisher asked;
- a layer the publisher stops sending (its bitrate falls to 0) is left for the
  best one still sent.

Dynacast: a layer that no viewer is on or waiting for is ``paused``: its relay
asks the publisher for no keyframe (the first layer never is: the recorder
reads it). A WHIP publisher cannot be told more than that (see
docs/architecture.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from media import rtpsend
from media.aiortc_seams import sender as sender_seams
from media.forwarder import (
    HISTORY_PACKETS,
    SR_INTERVAL_S,
    LeanForwarder,
    LeanViewer,
    abs_send_time,
)
from media.layerselect import LayerSelector, SelectorLimits
from media.metrics import lean_forwarded, simulcast
from media.relay import Relay

logger = logging.getLogger(__name__)

GOP_SERVE_MAX = 45
"""A cached GOP up to this many frames (1.5 s at 30 fps) answers a viewer's PLI."""
RATE_SMOOTHING = 0.3
"""Weight of the newest ``SR_INTERVAL_S`` window in a layer's measured bitrate."""
MAX_SWITCH_LOG = 64
#: Seconds without a frame after which a layer's viewers move to the next layer that
#: gives a key frame (Chromium sends 30 frames a second on every layer it sends).
QUIET_S = 0.5
SETTLE_S = 3.0
"""A layer sent for less than this is not one a viewer moves up to (see ``_settled``)."""
RESEND_SHARE = 0.5
"""Resends to a viewer per report round stay under this share of its estimate."""
PAD_MAX_GAP_S = 0.1
"""Padding owed for at most this long between two frames of a padded viewer's layer."""
PAD_MAX_PACKETS = 16
"""Padding goes back at most this many of the viewer's packets per frame."""


@dataclass(slots=True)
class ViewerLayer:
    """Where one viewer is: its layer, the one it waits for, its selector, its switches."""

    selector: LayerSelector
    layer: str | None = None
    pending: str | None = None
    served_at: float = -1e9
    pinned: str | None = None
    """On this layer for good (a cascade pull: the other node's viewers choose there)."""
    switches: list[tuple[float, str]] = field(default_factory=list)
    """(time, layer) of each move, the newest ``MAX_SWITCH_LOG``."""
    floor: int = 0
    """History index of its last move's keyframe: a packet before it is not resent."""
    resent_bytes: int = 0
    """Bytes resent to it since the last report round."""


class LayeredForwarder(LeanForwarder):
    """Sends each viewer the frames of its simulcast layer (see the module doc)."""

    def __init__(self, layers: Mapping[str, Relay], limits: SelectorLimits | None = None) -> None:
        self.layers = dict(layers)
        primary = next(iter(self.layers.values()))
        super().__init__(primary)
        primary.remove_listener(self._on_frame)
        self._listeners = {rid: functools.partial(self._on_layer_frame, rid) for rid in self.layers}
        for rid, relay in self.layers.items():
            relay.add_listener(self._listeners[rid])
        self.limits = limits or SelectorLimits()
        self.state: dict[LeanViewer, ViewerLayer] = {}
        self._on_layer: dict[str, list[Any]] = {rid: [] for rid in self.layers}
        self._bytes_in = {rid: relay.stats.bytes_in for rid, relay in self.layers.items()}
        self._idle = dict.fromkeys(self.layers, 0)
        #: When each layer's measured rate last went from 0 to sent (clock seconds).
        self._sent_since = dict.fromkeys(self.layers, self.relay.clock.time())
        #: Each layer's place in the offer (0: the top one; a higher number is a
        #: smaller picture): a viewer whose layer goes quiet only moves down.
        self._order = {rid: i for i, rid in enumerate(self.layers)}
        #: When each layer's last frame came (clock seconds).
        self._heard = dict.fromkeys(self.layers, self.relay.clock.time())
        self.rates: dict[str, float] = {rid: _gop_rate(r) for rid, r in self.layers.items()}
        """Measured bits per second of each layer (0: not sent lately)."""
        self.gop_served = 0
        self._padding: dict[LeanViewer, tuple[float, float]] = {}
        """Viewers being padded for a probe: (bits per second, when last padded)."""
        self.padded = 0
        """Padding packets sent (duplicates of viewers' own recent packets)."""

    def ranked(self) -> list[str]:
        """The layers being sent, smallest picture first (the offer's order, reversed).

        Not by measured bitrate: the top layer's rate starts low while the publisher's
        estimate ramps and falls when its encoder adapts to its CPU, and a viewer moved
        "down" to it would then be on the largest picture once its rate comes back.
        """
        sent = [r for r in self.layers if self.rates[r] > 0]
        return sorted(sent, key=self._order.__getitem__, reverse=True)

    # -- viewers ---------------------------------------------------------------

    def subscribe(self) -> LeanViewer:
        viewer = super().subscribe()
        self.state[viewer] = ViewerLayer(LayerSelector(self.relay.clock.time(), self.limits))
        return viewer

    def pin(self, viewer: LeanViewer, rid: str | None = None) -> None:
        """Keep ``viewer`` on layer ``rid`` (the first if None), before it starts."""
        state = self.state.get(viewer)
        if state is not None:
            state.pinned = rid if rid in self.layers else next(iter(self.layers))

    def bound(self, viewer: LeanViewer) -> None:
        if viewer.sender is not None:
            sender_seams.observe_rtcp(viewer.sender, functools.partial(self._feedback, viewer))

    def start(self, viewer: LeanViewer) -> None:
        state = self.state.get(viewer)
        if state is None or viewer.rtp is None:
            return
        ranked = self.ranked()
        rates = [self.rates[r] for r in ranked]
        chosen = state.selector.choose(self.relay.clock.time(), None, rates)
        layer = ranked[chosen] if chosen is not None else next(iter(self.layers))
        if state.pinned:
            layer = state.pinned
        self._move(viewer, state, layer)
        relay = self.layers[layer]
        viewer.first_frame_keyframe = True
        gop = relay.gop_slots()
        for slot in gop:
            self._send(slot, [viewer.rtp], relay)
        if gop:
            viewer.report()
        else:
            relay.request_keyframe("join")

    def remove(self, viewer: LeanViewer) -> None:
        super().remove(viewer)
        self.state.pop(viewer, None)
        self._padding.pop(viewer, None)
        for members in self._on_layer.values():
            if viewer.rtp is not None and viewer.rtp in members:
                members.remove(viewer.rtp)

    def _move(self, viewer: LeanViewer, state: ViewerLayer, layer: str) -> None:
        old = state.layer
        if old is not None and viewer.rtp in self._on_layer[old]:
            self._on_layer[old].remove(viewer.rtp)
            up = self.rates[layer] > self.rates[old]
            simulcast.inc("switch_up" if up else "switch_down")
        self._on_layer[layer].append(viewer.rtp)
        state.layer, state.pending = layer, None
        state.floor = self._next_index  # the landing keyframe is stored from here
        now = self.relay.clock.time()
        state.switches = [*state.switches[-MAX_SWITCH_LOG + 1 :], (now, layer)]
        state.selector.landed(now)
        logger.debug("layers %s t=%.2f moved %s -> %s", viewer.address, now, old, layer)

    def quiet(self, rid: str) -> bool:
        """Whether layer ``rid`` sent no frame in the last ``QUIET_S``."""
        return self.relay.clock.time() - self._heard[rid] > QUIET_S

    def layer_of(self, viewer: LeanViewer) -> str | None:
        state = self.state.get(viewer)
        return state.layer if state is not None else None

    # -- frames ----------------------------------------------------------------

    def _on_layer_frame(self, rid: str, slot: Any) -> None:
        now = self.relay.clock.time()
        self._heard[rid] = now
        # A layer that went quiet (a publisher back from an outage restarts from its
        # lowest layers, its top one only once its estimate allows): its viewers move
        # down to the first smaller layer that gives a key frame, asked for as soon as
        # one sends; never up (a weak viewer's link decides that, by its selector).
        quiet = [r for r in self.layers if self._on_layer[r] and now - self._heard[r] > QUIET_S]
        if slot.keyframe:
            for viewer, state in self.state.items():
                if viewer.rtp is None:
                    continue
                stalled = state.layer in quiet and not state.pinned
                lower = state.layer is not None and self._order[rid] > self._order[state.layer]
                if state.pending == rid or (stalled and lower):
                    self._move(viewer, state, rid)
        elif quiet and rid not in quiet and self._order[rid] > min(self._order[q] for q in quiet):
            relay = self.layers[rid]
            relay.paused = False  # its viewers-to-be want it (dynacast follows them)
            relay.request_keyframe("quiet")
        viewers = self._on_layer[rid]
        if viewers:
            self.frames += 1
            self._send(slot, viewers, self.layers[rid])
            lean_forwarded.inc(self.relay.kind)
            if self._padding:
                self._pad(rid, now)

    def _pad(self, rid: str, now: float) -> None:
        """Padding for the probing viewers on ``rid``, paced by its frames: RTX copies of
        each one's newest packets (libwebrtc pads with RTX payloads the same way); the
        browser counts them in its estimate and drops them as duplicates."""
        for viewer, (bps, last) in list(self._padding.items()):
            state, rtp = self.state.get(viewer), viewer.rtp
            if state is None or rtp is None or state.layer != rid:
                continue
            self._padding[viewer] = (bps, now)
            owed = bps * min(now - last, PAD_MAX_GAP_S) / 8
            stamp = abs_send_time(now)
            for back in range(1, PAD_MAX_PACKETS + 1):
                if owed <= 0:
                    break
                seq = (rtp.seq - back) & 0xFFFF
                index = rtp.lookup(seq)
                entry = self._history[index % HISTORY_PACKETS] if index >= 0 else None
                if entry is None or index < self._next_index - HISTORY_PACKETS:
                    break
                payload, timestamp, marker = entry
                if not rtpsend.resend(rtp, seq, payload, timestamp, marker, stamp):
                    break
                owed -= len(payload)
                self.padded += 1
                simulcast.inc("padding")

    def keyframe_wanted(self, viewer: LeanViewer, reason: str) -> None:
        state = self.state.get(viewer)
        if state is None or state.layer is None:
            self.relay.request_keyframe(reason)
            return
        relay = self.layers[state.layer]
        now = self.relay.clock.time()
        # A quiet layer (the publisher's outage) holds only a stale GOP: replayed, it
        # gives the viewer old pictures and then a jump, which Chromium took up to 3 s
        # to get over; the publisher is asked for a fresh key frame instead.
        fresh = not self.quiet(state.layer)
        gop = relay.gop_slots() if reason == "viewer" and fresh else []
        if gop and len(gop) <= GOP_SERVE_MAX and now - state.served_at >= 1.0 and viewer.rtp:
            state.served_at = now
            self.gop_served += 1
            simulcast.inc("gop_served")
            for slot in gop:
                self._send(slot, [viewer.rtp], relay)
            return
        relay.request_keyframe(reason)

    def resend(self, viewer: LeanViewer, seq: int) -> bool:
        """A NACKed packet, unless it is from before the viewer's last move (the keyframe
        it moved on makes it useless) or the viewer's resends this round already reach
        ``RESEND_SHARE`` of its estimate (libwebrtc's limit on retransmission: a cap
        that fell made a viewer NACK a whole queue of the old layer, and resending all
        of it kept the new link full for seconds)."""
        state, rtp = self.state.get(viewer), viewer.rtp
        if state is None or rtp is None:
            return False
        index = rtp.lookup(seq)
        if 0 <= index < state.floor:
            return False
        estimate = state.selector.estimate_bps
        if (
            estimate is not None
            and state.resent_bytes * 8 > RESEND_SHARE * estimate * SR_INTERVAL_S
        ):
            return False
        if not super().resend(viewer, seq):
            return False
        entry = self._history[index % HISTORY_PACKETS]
        state.resent_bytes += len(entry[0]) if entry is not None else 0
        return True

    # -- feedback and choice ---------------------------------------------------

    def _feedback(self, viewer: LeanViewer, packet: AnyRtcpPacket) -> None:
        state, rtp = self.state.get(viewer), viewer.rtp
        if state is None or rtp is None:
            return
        now = self.relay.clock.time()
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if rtp.ssrc in ssrcs:
                state.selector.estimate(bitrate, now)
        elif isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            report: RtcpReceiverInfo
            for report in packet.reports:
                if report.ssrc == rtp.ssrc:
                    state.selector.loss(report.fraction_lost / 256, now)

    def reported(self) -> None:
        self._measure()
        ranked = self.ranked()
        rates = [self.rates[r] for r in ranked]
        now = self.relay.clock.time()
        trace = logger.isEnabledFor(logging.DEBUG)
        padding: dict[LeanViewer, float] = {}
        for viewer, state in self.state.items():
            state.resent_bytes = 0
            if state.layer is None or state.pinned:
                continue
            # The selector judges the layer it chose last: a move waits for that layer's
            # keyframe, and is kept (asked for again below) until it lands or is changed.
            aim = state.pending or state.layer
            current = ranked.index(aim) if aim in ranked else None
            chosen = state.selector.choose(now, current, self._settled(ranked, rates, current, now))
            target = ranked[chosen] if chosen is not None else aim
            state.pending = None if target == state.layer else target
            if state.selector.padding_bps > 0 and state.pending is None:
                padding[viewer] = state.selector.padding_bps
            if trace:
                self._trace(viewer, state, ranked)
        self._padding = {
            v: (bps, self._padding.get(v, (0.0, now))[1]) for v, bps in padding.items()
        }
        watched = {s.layer for s in self.state.values()} | {s.pending for s in self.state.values()}
        for index, (rid, relay) in enumerate(self.layers.items()):
            relay.paused = index > 0 and rid not in watched and not relay.recorded
        for wanted in {s.pending for s in self.state.values() if s.pending is not None}:
            sent = self.layers[wanted].request_keyframe("switch")  # rate-limited per layer
            if trace:
                logger.debug("layers t=%.2f keyframe of %s asked: %s", now, wanted, sent)

    def _settled(
        self, ranked: list[str], rates: list[float], current: int | None, now: float
    ) -> list[float]:
        """``rates`` with no layer above ``current`` from the first one sent for less than
        ``SETTLE_S`` up: a layer the publisher has just started (or resumed) runs at a
        fraction of its rate and frame rate for its first seconds, and a viewer moved
        onto it then got 5 fps and a layer about to double its rate."""
        if current is None:
            return rates
        young = [i for i in range(current + 1, len(ranked))
                 if now - self._sent_since[ranked[i]] < SETTLE_S]  # fmt: skip
        return rates if not young else [*rates[: young[0]], *[0.0] * (len(rates) - young[0])]

    def _trace(self, viewer: LeanViewer, state: ViewerLayer, ranked: list[str]) -> None:
        """One debug line: what the viewer's selector saw and chose, and why."""
        selector = state.selector
        logger.debug(
            "layers %s t=%.2f est=%s loss=%.3f budget=%d rates=%s on=%s target=%s pad=%d why=%s",
            viewer.address, self.relay.clock.time(), selector.estimate_bps, selector.last_loss,
            selector.budget(), ",".join(f"{r}:{self.rates[r] / 1000:.0f}" for r in ranked),
            state.layer, state.pending or "-", selector.padding_bps, selector.why,
        )  # fmt: skip

    def _measure(self) -> None:
        """Each layer's bitrate over the last ``SR_INTERVAL_S``, smoothed; 0 once it stops."""
        for rid, relay in self.layers.items():
            sent = relay.stats.bytes_in - self._bytes_in[rid]
            self._bytes_in[rid] = relay.stats.bytes_in
            self._idle[rid] = 0 if sent else self._idle[rid] + 1
            rate, old = sent * 8 / SR_INTERVAL_S, self.rates[rid]
            if not old and sent:
                self._sent_since[rid] = self.relay.clock.time()
            smoothed = old * (1 - RATE_SMOOTHING) + rate * RATE_SMOOTHING if old else rate
            self.rates[rid] = 0.0 if self._idle[rid] >= 2 else smoothed

    def close(self) -> None:
        for rid, relay in self.layers.items():
            relay.remove_listener(self._listeners[rid])
        super().close()


def _gop_rate(relay: Relay) -> float:
    """A first figure for a layer's bitrate: its cached GOP's bytes over the time it spans."""
    gop = relay.gop_slots()
    span = gop[-1].arrived - gop[0].arrived if len(gop) > 1 else 0.0
    return sum(slot.size for slot in gop[:-1]) * 8 / span if span >= 0.3 else 0.0
