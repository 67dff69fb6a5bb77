"""Transport-wide congestion control to WHIP publishers: the answer and the feedback sent.

``negotiate`` answers an offered audio or video section that has both the
transport-wide sequence number extension and ``a=rtcp-fb:<pt> transport-cc``
(as browsers offer); a section with neither, or one of the two, is answered
as before and REMB stays its only feedback. ``TransportFeedback`` watches the
publisher's DTLS transport (``media.aiortc_seams.srtp.observe_rtp``: every
parsed RTP packet, before aiortc routes it) into a ``media.twcc``
``FeedbackRecorder`` and sends its feedback as SRTCP every ``interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from aiortc import sdp as aiortc_sdp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from media import metrics
from media.aiortc_seams import receiver as receiver_seams
from media.aiortc_seams import srtp as dtls_seams
from media.twcc import FeedbackRecorder

logger = logging.getLogger(__name__)

URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
FEEDBACK = "transport-cc"
"""The ``a=rtcp-fb`` type that asks for this feedback."""


class TransportFeedback:
    """Sends transport-cc feedback on one publisher connection (its DTLS transport).

    Starts watching the transport's RTP at once (its header extension ``ext_id``
    parsed from the first packet on) and sends what arrived every
    ``interval`` seconds (nothing when nothing arrived); ``close()`` stops both.
    ``sender_ssrc()`` names our side of the connection (0 until it is known).
    """

    def __init__(
        self,
        dtls: RTCDtlsTransport,
        ext_id: int,
        sender_ssrc: Callable[[], int | None],
        *,
        interval: float = 0.05,
    ) -> None:
        self.recorder = FeedbackRecorder()
        dtls_seams.parse_header_extension(dtls, URI_TRANSPORT_CC, ext_id)
        self.sent = 0
        self._dtls = dtls
        self._sender_ssrc = sender_ssrc
        self._interval = interval
        self._unwatch = dtls_seams.observe_rtp(dtls, self._observe)
        self._task: asyncio.Task[None] | None = asyncio.ensure_future(self._run())

    def _observe(self, packet: RtpPacket) -> None:
        seq = packet.extensions.transport_sequence_number
        if seq is not None:
            self.recorder.record(seq, time.monotonic_ns() // 1000, packet.ssrc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                packets = self.recorder.feedback(self._sender_ssrc() or 0)
            except Exception:  # a fault here must not end the feedback: log, go on
                logger.exception("transport-cc feedback could not be built")
                continue
            for data in packets:
                if not await dtls_seams.send_rtcp(self._dtls, data):
                    break  # not connected (yet, or any more): what was built is dropped
                self.sent += 1
                metrics.transport_cc.inc("feedback")

    @property
    def closed(self) -> bool:
        return self._task is None

    async def close(self) -> None:
        """Stop watching and sending (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._unwatch()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def offers_transport_cc(section: aiortc_sdp.MediaDescription) -> int | None:
    """The extension id of the transport-wide sequence number, if ``section`` offers it
    and the ``transport-cc`` feedback on one of its codecs (else None)."""
    ext = next((x.id for x in section.rtp.headerExtensions if x.uri == URI_TRANSPORT_CC), None)
    if ext is None or not 1 <= ext <= 14:
        return None
    wanted = any(fb.type == FEEDBACK for c in section.rtp.codecs for fb in c.rtcpFeedback)
    return ext if wanted else None


def negotiate(transceiver: RTCRtpTransceiver, section: aiortc_sdp.MediaDescription) -> int | None:
    """Answer ``section``'s transport-cc offer on ``transceiver``: the extension (the
    offer's id) and ``a=rtcp-fb:<pt> transport-cc`` on each codec that offered it.

    Call after ``setRemoteDescription`` and before ``createAnswer``. Returns the
    extension id, or None (and nothing changed) when the section does not offer both.
    """
    ext = offers_transport_cc(section)
    if ext is None:
        return None
    receiver_seams.add_header_extensions(
        transceiver, [RTCRtpHeaderExtensionParameters(id=ext, uri=URI_TRANSPORT_CC)]
    )
    offered = {c.payloadType for c in section.rtp.codecs if FEEDBACK in _types(c.rtcpFeedback)}
    for codec in receiver_seams.negotiated_codecs(transceiver):
        if codec.payloadType in offered and FEEDBACK not in _types(codec.rtcpFeedback):
            codec.rtcpFeedback = [*codec.rtcpFeedback, RTCRtcpFeedback(type=FEEDBACK)]
    return ext


def _types(feedback: Sequence[RTCRtcpFeedback]) -> set[str]:
    return {fb.type for fb in feedback if fb.parameter is None}
