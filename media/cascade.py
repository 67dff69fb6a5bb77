"""Cascade: pull a publisher's stream from its origin node once, fan it out locally.

A node that has viewers for a publisher held by another node becomes a WHEP
client of that node: it offers to receive audio and video, the origin
answers with the publisher's codecs (forwarded as they are), and the
received tracks go — still encoded, through the pass-through seam — into
local relays exactly like a WHIP publisher's. Local viewers then attach to
the returned :class:`~media.sessions.PublisherSession` as usual, so the
origin sends the stream once per node, not once per viewer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiortc import RTCSessionDescription
from aiortc import sdp as aiortc_sdp

from livecore.clock import Clock
from media.passthrough import codec_family, enable_passthrough
from media.peers import (
    PUBLISHER_CODECS,
    NegotiationError,
    PeerConfig,
    codec_preferences,
    create_peer_connection,
)
from media.relay import RelayLimits
from media.sessions import PublisherSession

#: Sends an offer to the origin and returns its answer (the WHEP POST).
Exchange = Callable[[str], Awaitable[str]]


async def pull(
    exchange: Exchange,
    *,
    config: PeerConfig | None = None,
    limits: RelayLimits | None = None,
    clock: Clock | None = None,
    name: str = "pull",
) -> PublisherSession:
    """Receive a publisher's stream from its origin; raises NegotiationError on refusal."""
    pc = create_peer_connection(config)
    session = PublisherSession(pc)
    try:
        for kind in ("audio", "video"):
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            prefs = []
            for offered in PUBLISHER_CODECS[kind]:
                prefs += [c for c in codec_preferences(kind, offered) if c not in prefs]
            transceiver.setCodecPreferences(prefs)
            enable_passthrough(transceiver.receiver)
        await pc.setLocalDescription(await pc.createOffer())
        answer = await exchange(str(pc.localDescription.sdp))
        families = _answered_families(answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for transceiver in pc.getTransceivers():
            receiver, kind = transceiver.receiver, transceiver.kind
            family = families.get(kind)
            if family is None or receiver.track is None:
                continue
            label = f"{name}-{kind}"
            session.relay_receiver(receiver, family, limits=limits, clock=clock, name=label)
        if not session.relays:
            raise NegotiationError("the origin sends nothing")
    except BaseException:
        await session.close()
        raise
    return session


def _answered_families(answer_sdp: str) -> dict[str, str]:
    """The codec family the origin sends per kind (the first codec of each section)."""
    try:
        answer = aiortc_sdp.SessionDescription.parse(answer_sdp)
    except (ValueError, IndexError, KeyError) as exc:
        raise NegotiationError(f"unreadable answer from the origin: {exc}") from exc
    out = {}
    for m in answer.media:
        if m.kind in ("audio", "video") and m.direction in ("sendonly", "sendrecv"):
            codecs = [c for c in m.rtp.codecs if not c.mimeType.lower().endswith("/rtx")]
            if codecs:
                out[m.kind] = codec_family(codecs[0].mimeType)
    return out
