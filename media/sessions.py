"""WHIP publishers and WHEP viewers: SDP offer in, SDP answer and a session out.

The signalling layer calls three things, all on one event loop:

- ``accept_publisher(offer_sdp)`` → ``(answer_sdp, PublisherSession)``: a
  pass-through receiver and a ``Relay`` per received kind (one audio, one
  video at most);
- ``accept_viewer(publisher, offer_sdp)`` → ``(answer_sdp, ViewerSession)``:
  a ``RelayTrack`` per kind the viewer receives, sent without transcoding;
- ``await session.close()``: idempotent; closing a publisher closes its
  viewers. A session also closes itself when its connection fails, then
  calls ``on_close(session)`` (to drop it from the caller's registry).

An offer may come without candidates: ``await session.trickle(frag)`` adds
the remote candidates of a later ``application/trickle-ice-sdpfrag`` (RFC
8840, WHIP PATCH) to the session's one ICE transport (max-bundle), and
end-of-candidates. Every failure to answer raises ``NegotiationError`` and
leaves nothing open.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import uuid
from collections.abc import Callable

from aiortc import RTCRtpTransceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InternalError, InvalidStateError, OperationError
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from livecore.clock import Clock, SystemClock
from media import metrics
from media.aiortc_seams import receiver as receiver_seams
from media.forwarder import LeanForwarder, LeanViewer, section_params
from media.layerforward import LayeredForwarder
from media.offers import parse_offer
from media.passthrough import codec_family, enable_passthrough, install_sender_hooks
from media.passthrough import request_keyframe as request_publisher_keyframe
from media.peers import (
    MediaPeerConnection,
    NegotiationError,
    PeerConfig,
    PublisherGone,
    choose_publisher_codec,
    codec_preferences,
    create_peer_connection,
    negotiable,
)
from media.relay import Relay, RelayLimits, RelayTrack, SharedPacker
from media.ridemux import RidDemux
from media.sdpfrag import FragmentError, SdpFrag
from media.simulcast import MAX_LAYERS, answer_simulcast, offered_layers
from media.transportcc import TransportFeedback
from media.transportcc import negotiate as negotiate_transport_cc

FORWARDERS = ("lean", "aiortc")
"""How viewers are served: the lean path (``media.forwarder``) or aiortc's own senders."""


MAX_TRICKLED = 64
"""Remote candidates one session takes by trickle, all PATCHes together (each makes
candidate pairs and ICE checks; a full gathering is a few)."""

_AIORTC_REFUSALS = (OperationError, InternalError, InvalidStateError, ValueError)
"""What aiortc raises for an offer it cannot apply (or a connection closed meanwhile)."""


class _Session:
    """What publisher and viewer sessions share: an id, a connection, closing once."""

    def __init__(self, pc: MediaPeerConnection) -> None:
        self.id = uuid.uuid4().hex
        self.pc = pc
        #: The strong entity-tag of the session's ICE session (RFC 9725 §4.3.1).
        self.ice_tag = secrets.token_hex(8)
        #: The remote ICE ufrag and pwd of the offer (set once answered).
        self.remote_ice: tuple[str, str] = ("", "")
        #: Remote candidates added by ``trickle`` (at most ``MAX_TRICKLED``).
        self.trickled = 0
        self._on_close: Callable[[], None] | None = None
        self._closing: asyncio.Task[None] | None = None
        #: True when the session closed because its connection failed (ICE consent
        #: expired: the peer vanished), not by ``close()`` (a DELETE, a replacement).
        self.lost = False
        pc.on("connectionstatechange", self._connection_changed)

    @property
    def closed(self) -> bool:
        """True once closing started (by ``close()`` or a failed connection)."""
        return self._closing is not None

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    def _connection_changed(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and self._closing is None:
            self.lost = True  # not by close(): the connection went away under us
            self._closing = asyncio.ensure_future(self._close())

    async def close(self) -> None:
        """Close the session and its connection; safe to call more than once."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        try:
            await self._release()
        finally:
            await self.pc.close()
            if self._on_close is not None:
                self._on_close()

    def check_fragment(self, frag: SdpFrag, trickled: int) -> list[str]:
        """The session's mids; raises ``FragmentError`` if ``frag`` names another mid or
        would take the session from ``trickled`` past ``MAX_TRICKLED`` candidates."""
        mids = [t.mid for t in self.pc.getTransceivers() if t.mid is not None]
        unknown = sorted(set(frag.mids) - set(mids))
        if unknown:
            raise FragmentError(f"a=mid {unknown[0]!r} is not a section of this session")
        if trickled + len(frag.candidates) > MAX_TRICKLED:
            raise FragmentError(
                f"a session takes at most {MAX_TRICKLED} trickled candidates ({trickled} already)"
            )
        return mids

    async def trickle(self, frag: SdpFrag) -> None:
        """Add ``frag``'s remote candidates (and its end-of-candidates) to the ICE agent.

        Raises ``FragmentError`` before changing anything if ``frag`` names an
        ``a=mid`` the session does not have, or would take the session past
        ``MAX_TRICKLED`` candidates. Candidates the peer config does
        not allow (non-loopback with loopback-only ICE) are dropped silently,
        as are candidates after end-of-candidates (RFC 8838 §14). With
        max-bundle there is one transport: every candidate goes to it, the
        ``sdpMid`` being the first section's whatever section it came in.
        """
        mids = self.check_fragment(frag, self.trickled)
        if not mids:
            return
        self.trickled += len(frag.candidates)
        for item in frag.candidates:
            item.candidate.sdpMid = mids[0]
            await self.pc.addIceCandidate(item.candidate)
        if frag.end_of_candidates:
            await self.pc.addIceCandidate(None)

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the session has closed (replaces an earlier one)."""
        self._on_close = callback

    async def _release(self) -> None:
        """Free what the subclass holds (called once, before the connection closes)."""


class PublisherSession(_Session):
    """One WHIP publisher: its connection and a ``Relay`` per kind it sends."""

    def __init__(self, pc: MediaPeerConnection) -> None:
        super().__init__(pc)
        self.relays: dict[str, Relay] = {}
        """Per kind; for a simulcast publisher's video, the first layer of its offer."""
        self.layers: dict[str, Relay] = {}
        """A simulcast publisher's video relays by rid, in the offer's order (else empty).
        Each is a full ``Relay`` (GOP cache, listeners, ``subscribe()``): a recorder
        takes each layer's frames from it as from ``relays``."""
        self.demux: RidDemux | None = None
        self._layer_clock: float | None = None
        self.forwarders: dict[str, LeanForwarder] = {}
        self.viewers: set[ViewerSession] = set()
        self.feedback: TransportFeedback | None = None
        """Transport-wide congestion control feedback, when the offer asked for it."""

    def forwarder(self, kind: str) -> LeanForwarder:
        """The lean forwarder of ``kind``'s relay (made on first use)."""
        forwarder = self.forwarders.get(kind)
        if forwarder is None and kind == "video" and len(self.layers) > 1:
            forwarder = self.forwarders[kind] = LayeredForwarder(self.layers)
        elif forwarder is None:
            forwarder = self.forwarders[kind] = LeanForwarder(self.relays[kind])
        return forwarder

    def _layer_origin(self, clock: Clock | None) -> float:
        """Seconds since the publisher's first video frame (of any layer)."""
        now = (clock or SystemClock()).time()
        if self._layer_clock is None:
            self._layer_clock = now
        return now - self._layer_clock

    def relay_receiver(
        self,
        receiver: RTCRtpReceiver,
        family: str,
        *,
        limits: RelayLimits | None,
        clock: Clock | None,
        name: str,
        rid: str | None = None,
    ) -> Relay:
        """Forward what ``receiver`` gets, encoded as it is, through a new started ``Relay``.

        Makes the receiver pass-through (harmless if it already is), so call it
        before the connection is established; keyframe requests go to the
        publisher as PLIs. The relay is kept under its kind in ``relays``; a
        simulcast layer's (``rid``) under its rid in ``layers`` (the first also
        in ``relays``), its pts on the clock the layers share.
        """
        enable_passthrough(receiver)
        track = receiver.track
        relay = Relay(
            track.kind,
            family,
            request_keyframe=functools.partial(request_publisher_keyframe, receiver),
            limits=limits,
            clock=clock,
            name=name,
            origin=functools.partial(self._layer_origin, clock) if rid is not None else None,
        )
        relay.start(track)
        if rid is not None:
            self.layers[rid] = relay
        if rid is None or len(self.layers) == 1:
            self.relays[track.kind] = relay
        return relay

    def send_transport_feedback(self, media: list[aiortc_sdp.MediaDescription]) -> None:
        """Negotiate transport-cc on each section whose offer has it (``media.transportcc``) and,
        if any did, start sending the feedback. Call before ``createAnswer``."""
        sections = {m.kind: m for m in media}
        transceivers = [t for t in self.pc.getTransceivers() if t.kind in sections]
        ids = [negotiate_transport_cc(t, sections[t.kind]) for t in transceivers]
        ext_id = next((i for i in ids if i is not None), None)
        if ext_id is None:
            return
        receivers = [t.receiver for t in transceivers]
        metrics.transport_cc.inc("negotiated")
        self.feedback = TransportFeedback(
            receivers[0].transport,
            ext_id,
            lambda: next(filter(None, map(receiver_seams.rtcp_ssrc, receivers)), None),
        )

    async def _release(self) -> None:
        if self.feedback is not None:
            await self.feedback.close()
        for forwarder in self.forwarders.values():
            await forwarder.aclose()
        for relay in {*self.relays.values(), *self.layers.values()}:
            relay.close()
        viewers = list(self.viewers)
        await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)


class ViewerSession(_Session):
    """One WHEP viewer of a publisher: its connection and a ``RelayTrack`` per kind."""

    def __init__(self, pc: MediaPeerConnection, publisher: PublisherSession) -> None:
        super().__init__(pc)
        self.publisher = publisher
        self.tracks: dict[str, RelayTrack | LeanViewer] = {}

    @property
    def lean(self) -> list[LeanViewer]:
        return [t for t in self.tracks.values() if isinstance(t, LeanViewer)]

    def _connection_changed(self) -> None:
        super()._connection_changed()
        if self.pc.connectionState == "connected":
            for viewer in self.lean:
                viewer.start()

    async def _release(self) -> None:
        for track in self.tracks.values():
            track.stop()
        self.publisher.viewers.discard(self)


async def accept_publisher(
    offer_sdp: str,
    *,
    config: PeerConfig | None = None,
    limits: RelayLimits | None = None,
    clock: Clock | None = None,
    on_close: Callable[[PublisherSession], None] | None = None,
) -> tuple[str, PublisherSession]:
    """Answer a WHIP offer: receive its audio/video without decoding and relay it.

    Video is accepted as H.264 (packetization-mode=1) if offered, else VP8;
    audio as Opus; transport-cc feedback is sent when the offer asks for it
    (``media.transportcc``). Raises ``NegotiationError`` when the offer cannot be served.
    ``on_close(session)`` is called once the returned session has closed.
    """
    media = parse_offer(offer_sdp)
    simulcast = offered_layers(offer_sdp)
    pc = create_peer_connection(config)
    session = PublisherSession(pc)
    try:
        families: dict[str, str] = {}
        for m in media:
            if m.direction not in ("sendonly", "sendrecv"):
                raise NegotiationError(f"a publisher must send {m.kind}, offer is {m.direction}")
            families[m.kind] = choose_publisher_codec(m.kind, m.rtp.codecs)
            transceiver = pc.addTransceiver(m.kind, direction="recvonly")
            transceiver.setCodecPreferences(codec_preferences(m.kind, families[m.kind]))
        # The receivers' tracks exist once the offer is applied; the receivers
        # start only after ICE and DTLS connect, so pass-through is in time.
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            kind, receiver = transceiver.kind, transceiver.receiver
            if kind not in families or receiver.track is None:
                continue
            name = f"{session.id[:8]}-{kind}"
            if kind == "video" and simulcast is not None:
                session.demux = RidDemux(transceiver, simulcast)
                for rid, layer in session.demux.layers.items():
                    session.relay_receiver(
                        layer, families[kind], limits=limits, clock=clock, name=f"{name}-{rid}",
                        rid=rid,
                    )  # fmt: skip
                continue
            session.relay_receiver(receiver, families[kind], limits=limits, clock=clock, name=name)
        session.send_transport_feedback(media)
        await pc.setLocalDescription(await pc.createAnswer())
    except _AIORTC_REFUSALS as exc:
        await session.close()
        raise NegotiationError(f"cannot answer the publisher: {exc}") from exc
    except BaseException:
        await session.close()
        raise
    session.remote_ice = _ice_credentials(media)
    if on_close is not None:
        session.when_closed(functools.partial(on_close, session))
    answer = str(pc.localDescription.sdp)
    if simulcast is not None:
        answer = answer_simulcast(answer, simulcast.rids)
    return answer, session


async def accept_viewer(
    publisher: PublisherSession,
    offer_sdp: str,
    *,
    config: PeerConfig | None = None,
    on_close: Callable[[ViewerSession], None] | None = None,
    forwarder: str = "lean",
    pull: bool = False,
) -> tuple[str, ViewerSession]:
    """Answer a WHEP offer with ``publisher``'s media, forwarded without transcoding.

    Each audio/video section the viewer can receive gets that kind's relay,
    in the publisher's codec (H.264 or VP8 + RTX; Opus). Raises
    ``NegotiationError`` if the publisher is closed (before or while
    answering), sends nothing the viewer asks for, or the viewer does not
    support the publisher's codec. ``on_close(session)`` is called once the
    returned session has closed (also when its publisher closes).
    ``forwarder`` is ``"lean"`` (``media.forwarder``) or ``"aiortc"`` (one
    aiortc sender loop per viewer and track). ``pull``: another node's copy (a
    cascade): its video sections get a simulcast publisher's layers in order,
    one each, pinned (that node's viewers choose among them there), not what
    its feedback would choose; a further section of a kind (or of video beyond
    the layers) is answered inactive, for any viewer.
    """
    if forwarder not in FORWARDERS:
        raise ValueError(f"forwarder must be one of {FORWARDERS}, not {forwarder!r}")
    if publisher.closed:
        raise PublisherGone("the publisher has gone")
    media = parse_offer(offer_sdp, MAX_LAYERS if pull else 1)
    pc = create_peer_connection(config)
    session = ViewerSession(pc, publisher)
    publisher.viewers.add(session)  # a publisher closing meanwhile closes it too
    try:
        layers = list(publisher.layers) if pull and forwarder == "lean" else []
        senders: list[tuple[LeanViewer, RTCRtpTransceiver]] = []
        for m in media:
            relay = publisher.relays.get(m.kind)
            key, rid = m.kind, None
            if m.kind == "video" and layers:
                taken = sum(1 for k in session.tracks if k.startswith("video"))
                rid = layers[taken] if taken < len(layers) else None
                key = "video" if taken == 0 else f"video:{rid}"
            if key in session.tracks or (layers and m.kind == "video" and rid is None):
                relay = None  # one section per kind (per layer for a pull)
            if relay is None or relay.closed or m.direction not in ("recvonly", "sendrecv"):
                # Answer the section ourselves (inactive): a transceiver aiortc would
                # create for it while applying the offer can leave a bundled
                # connection that starts with it stuck in "connecting".
                pc.addTransceiver(m.kind, direction="inactive")
                continue
            if not negotiable(m.kind, relay.codec, m.rtp.codecs):
                raise NegotiationError(f"the viewer cannot receive {relay.codec}")
            if forwarder == "lean":
                fanout = publisher.forwarder(m.kind)
                lean = fanout.subscribe()
                if pull and isinstance(fanout, LayeredForwarder):
                    fanout.pin(lean, rid)
                session.tracks[key] = lean
                transceiver = pc.addTransceiver(lean.track, direction="sendonly")
                transceiver.setCodecPreferences(codec_preferences(m.kind, relay.codec))
                lean.bind(transceiver.sender)
                senders.append((lean, transceiver))
                continue
            track = relay.subscribe()
            session.tracks[m.kind] = track
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(codec_preferences(m.kind, relay.codec))
            install_sender_hooks(
                transceiver.sender,
                encoder=SharedPacker(track),
                on_keyframe_request=track.request_keyframe,
            )
        if not session.tracks:
            raise NegotiationError("the offer asks for nothing this publisher sends")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = str(pc.localDescription.sdp)
        answered = aiortc_sdp.SessionDescription.parse(answer)
        _check_answer_codecs(answered, session)
        params = section_params(answered)
        for viewer, transceiver in senders:
            section = params.get(transceiver.mid or "")
            viewer.params = section[1] if section is not None else None
        if session.closed:
            raise PublisherGone("the publisher has gone")
    except _AIORTC_REFUSALS as exc:
        await session.close()
        if publisher.closed:  # it closed this viewer's connection under aiortc
            raise PublisherGone("the publisher has gone") from exc
        raise NegotiationError(f"cannot answer the viewer: {exc}") from exc
    except BaseException:
        with contextlib.suppress(Exception):
            await session.close()
        raise
    session.remote_ice = _ice_credentials(media)
    if on_close is not None:
        session.when_closed(functools.partial(on_close, session))
    return answer, session


def _ice_credentials(media: list[aiortc_sdp.MediaDescription]) -> tuple[str, str]:
    """The offer's ICE ufrag and pwd (max-bundle: those of its first section)."""
    ice = media[0].ice
    assert ice is not None and ice.usernameFragment and ice.password  # parse_offer checked
    return ice.usernameFragment, ice.password


def _check_answer_codecs(answer: aiortc_sdp.SessionDescription, session: ViewerSession) -> None:
    """Each sending section's first codec (the one aiortc sends) is the relay's codec."""
    for m in answer.media:
        track = session.tracks.get(m.kind)
        if track is None or m.direction not in ("sendonly", "sendrecv"):
            continue
        first = m.rtp.codecs[0].mimeType if m.rtp.codecs else "none"
        if codec_family(first) != codec_family(track.relay.codec):
            sent = track.relay.codec
            raise NegotiationError(f"negotiated {first} but the publisher sends {sent}")
