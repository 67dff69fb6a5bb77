"""RTP packetisation of encoded frames, done once per frame for every viewer.

aiortc's ``RTCRtpSender`` calls its encoder's ``pack(packet)`` for anything
that is not a decoded frame. ``SharedPacker`` is that encoder for a relayed
viewer: it returns the payloads the relay cached for the frame the viewer's
track just returned, so N viewers cost one packetisation, not N.
"""

from __future__ import annotations

import fractions
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from aiortc.codecs import get_encoder
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame

from media.metrics import codec_ops
from media.passthrough import codec_family

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

logger = logging.getLogger(__name__)

Payloads = tuple[list[bytes], int]
"""RTP payloads of one frame and its RTP timestamp (before the sender's random origin)."""
Packetiser = Callable[["EncodedPacket", int], Payloads]
OPUS_TIME_BASE = fractions.Fraction(1, 48000)


def make_packetiser(mime_type: str) -> Packetiser:
    """RTP payloads of one frame of ``mime_type``; pure given ``(packet, seq)``.

    VP8's picture id (RFC 7741 §4.2) is derived from the relay's frame
    sequence number, so every viewer sees increasing ids whatever it skipped.
    """
    family = codec_family(mime_type)
    if family == "video/h264":
        h264 = H264Encoder()
        return lambda packet, seq: h264.pack(packet)
    if family == "video/vp8":
        vp8 = Vp8Encoder()
        base = random.randrange(1 << 15)

        def pack_vp8(packet: EncodedPacket, seq: int) -> Payloads:
            vp8.picture_id = (base + seq) % (1 << 15)
            return vp8.pack(packet)

        return pack_vp8
    if family == "audio/opus":
        return lambda packet, seq: (
            [bytes(packet)],
            convert_timebase(packet.pts or 0, packet.time_base, OPUS_TIME_BASE),
        )
    raise ValueError(f"cannot forward {mime_type}: no packetiser")


class PackSource(Protocol):
    """What a ``SharedPacker`` packs for (``media.relay.RelayTrack`` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def codec(self) -> str: ...
    @property
    def label(self) -> str: ...
    def payloads(self, packet: EncodedPacket) -> Payloads:
        """RTP payloads of ``packet``, the frame the source's ``recv()`` just returned."""
        ...


class SharedPacker(Encoder):
    """The encoder a viewer's ``RTCRtpSender`` uses: packs with the relay's cache.

    ``pack(packet)`` returns ``track.payloads(packet)``: for a relay track, the
    payloads the relay computed for the frame the track just returned
    (computing them once if no viewer did yet).
    ``encode()`` means a decoded frame reached a relayed sender: it is counted
    in ``media.metrics.codec_ops`` and encoded by a real encoder, so the
    stream survives the mistake but the counter shows it.
    """

    def __init__(self, track: PackSource) -> None:
        self._track = track
        self._encoder: Encoder | None = None

    def pack(self, packet: EncodedPacket) -> Payloads:
        return self._track.payloads(packet)

    def encode(self, frame: Frame, force_keyframe: bool = False) -> Payloads:
        track = self._track
        codec_ops.inc(f"encode:{track.codec}")
        if self._encoder is None:
            logger.warning("relay %s: a decoded frame reached a viewer; encoding it", track.label)
            rate = 90000 if track.kind == "video" else 48000
            params = RTCRtpCodecParameters(mimeType=track.codec, clockRate=rate, payloadType=0)
            self._encoder = get_encoder(params)
        return self._encoder.encode(frame, force_keyframe)
