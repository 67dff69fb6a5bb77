"""Cascade: pull a publisher's stream from its origin node once, fan it out locally.

A node that has viewers for a publisher held by another node becomes a WHEP
client of that node: it offers to receive audio and video, the origin
answers with the publisher's codecs (forwarded as they are), and the
received tracks go — still encoded, through the pass-through seam — into
local relays exactly like a WHIP publisher's. Local viewers then attach to
the returned :class:`~media.sessions.PublisherSession` as usual, so the
origin sends the stream once per node, not once per viewer.

Of a simulcast publisher every layer comes, one video section each (the pull
offers ``MAX_LAYERS``; the origin answers one per layer, top first, the rest
inactive): the copy's layers are named ``p0``, ``p1``, … in that order, and the
node's own viewers each get the layer their link carries, as at the origin.
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
from media.simulcast import MAX_LAYERS

#: Sends an offer to the origin and returns its answer (the WHEP POST).
Exchange = Callable[[str], Awaitable[str]]


async def pull(
    exchange: Exchange,
    *,
    config: PeerConfig | None = None,
    limits: RelayLimits | None = None,
    clock: Clock | None = None,
    name: str = "pull",
    videos: int = MAX_LAYERS,
) -> PublisherSession:
    """Receive a publisher's stream from its origin (offering ``videos`` video sections);
    raises NegotiationError on refusal."""
    pc = create_peer_connection(config)
    session = PublisherSession(pc)
    try:
        for kind in ("audio", *["video"] * videos):
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            prefs = []
            for offered in PUBLISHER_CODECS[kind]:
                prefs += [c for c in codec_preferences(kind, offered) if c not in prefs]
            transceiver.setCodecPreferences(prefs)
            enable_passthrough(transceiver.receiver)
        await pc.setLocalDescription(await pc.createOffer())
        answer = await exchange(str(pc.localDescription.sdp))
        families, sending = _answered(answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        answered = [t for t in pc.getTransceivers()
                    if t.mid in sending and families.get(t.kind) and t.receiver.track]  # fmt: skip
        layered = sum(1 for t in answered if t.kind == "video") > 1
        for transceiver in answered:
            receiver, kind = transceiver.receiver, transceiver.kind
            index = len(session.layers) if layered and kind == "video" else None
            rid = f"p{index}" if index is not None else None
            label = f"{name}-{kind}" + (f"-{rid}" if rid else "")
            session.relay_receiver(receiver, families[kind], limits=limits, clock=clock,
                                   name=label, rid=rid)  # fmt: skip
        if not session.relays:
            raise NegotiationError("the origin sends nothing")
    except BaseException:
        await session.close()
        raise
    return session


def _answered(answer_sdp: str) -> tuple[dict[str, str], set[str]]:
    """The codec family the origin sends per kind (the first codec of its first
    section of that kind), and the mids of the sections it sends in."""
    try:
        answer = aiortc_sdp.SessionDescription.parse(answer_sdp)
    except (ValueError, IndexError, KeyError) as exc:
        raise NegotiationError(f"unreadable answer from the origin: {exc}") from exc
    families: dict[str, str] = {}
    sending: set[str] = set()
    for m in answer.media:
        if m.kind in ("audio", "video") and m.direction in ("sendonly", "sendrecv"):
            codecs = [c for c in m.rtp.codecs if not c.mimeType.lower().endswith("/rtx")]
            if codecs and m.rtp.muxId:
                families.setdefault(m.kind, codec_family(codecs[0].mimeType))
                sending.add(m.rtp.muxId)
    return families, sending
