"""Reading WHIP and WHEP offers before anything is looked up or built.

An offer the server could answer in no state of the room (unreadable, no
audio or video section, missing ICE credentials, RTCP mux or a DTLS
fingerprint, nothing to send or to receive, no codec the server takes or
forwards) is refused the same way whoever is live: the endpoints check it
first, so a junk offer gets ``bad_sdp``, never ``stream_not_found`` or
``room_not_found``. Whether a valid offer can be served by the publisher
that is live (its codec) is decided later, by :mod:`media.sessions`.
Everything here is pure: no peer connection, no event loop.
"""

from __future__ import annotations

import functools

from aiortc import sdp as aiortc_sdp

from media.peers import PUBLISHER_CODECS, NegotiationError, choose_publisher_codec, negotiable
from media.simulcast import MAX_LAYERS, offered_layers

MEDIA_KINDS = ("audio", "video")
SENDING = ("sendonly", "sendrecv")
RECEIVING = ("recvonly", "sendrecv")


def parse_offer(offer_sdp: str, videos: int = 1) -> list[aiortc_sdp.MediaDescription]:
    """The offer's audio and video sections (at most one audio and ``videos`` video:
    more only in a node's pull, one per simulcast layer), each with ICE credentials,
    RTCP mux and a DTLS fingerprint (what aiortc and RFC 8829 need).

    The endpoint checks an offer and the session answers it: the same text is
    parsed once (the last few offers are remembered; callers only read them).
    """
    return list(_parsed_offer(offer_sdp, videos))


@functools.lru_cache(maxsize=32)
def _parsed_offer(offer_sdp: str, videos: int) -> tuple[aiortc_sdp.MediaDescription, ...]:
    try:
        offer = aiortc_sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:  # the parser's failure modes are not all documented
        raise NegotiationError(f"unreadable SDP offer: {exc!r}"[:200]) from None
    media = [m for m in offer.media if m.kind in MEDIA_KINDS]
    if not media:
        raise NegotiationError("the offer has no audio or video section")
    kinds = [m.kind for m in media]
    if kinds.count("audio") > 1 or kinds.count("video") > videos:
        most = "one video section" if videos == 1 else f"{videos} video sections"
        raise NegotiationError(f"at most one audio section and {most} per offer")
    for m in media:
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise NegotiationError(f"the {m.kind} section has no ICE ufrag and pwd")
        if not m.rtcp_mux:
            raise NegotiationError(f"the {m.kind} section has no a=rtcp-mux")
        if m.dtls is None or not m.dtls.fingerprints:
            raise NegotiationError(f"the {m.kind} section has no DTLS fingerprint")
    return tuple(media)


def check_publisher_offer(offer_sdp: str) -> list[aiortc_sdp.MediaDescription]:
    """A WHIP offer: every section sends, each in a codec the server takes."""
    media = parse_offer(offer_sdp)
    for m in media:
        if m.direction not in SENDING:
            raise NegotiationError(f"a publisher must send {m.kind}, offer is {m.direction}")
        choose_publisher_codec(m.kind, m.rtp.codecs)
    offered_layers(offer_sdp)  # a simulcast that cannot be received is refused here too
    return media


def check_viewer_offer(offer_sdp: str, pull: bool = False) -> list[aiortc_sdp.MediaDescription]:
    """A WHEP offer: some section receives, in a codec a publisher may send here; a
    node's ``pull`` may have a video section per simulcast layer."""
    media = parse_offer(offer_sdp, MAX_LAYERS if pull else 1)
    receiving = [m for m in media if m.direction in RECEIVING]
    if not receiving:
        raise NegotiationError("the offer receives nothing (no recvonly or sendrecv section)")
    if not any(
        negotiable(m.kind, family, m.rtp.codecs)
        for m in receiving
        for family in PUBLISHER_CODECS[m.kind]
    ):
        raise NegotiationError("the offer can receive none of the codecs publishers send")
    return media
