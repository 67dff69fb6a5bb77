"""The sender's seams: its encoder, keyframe and NACK hooks, SSRCs and sender reports.

``media.passthrough`` gives an ``RTCRtpSender`` an encoder whose ``pack()``
packetises frames that are already encoded, and routes the viewer's PLI/FIR
to the relay; the lean forwarder (``media.forwarder``) sends RTP itself and
keeps aiortc's RTCP loop true by setting what its sender reports say and
answering NACKs from its own history. Every private name is read or set
here, one accessor per seam.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from aiortc import rtcrtpsender
from aiortc.codecs.base import Encoder
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import AnyRtcpPacket

from media.aiortc_seams.introspect import Checks, code_names

# Name-mangled private attributes (``self.__x`` inside class ``C`` is ``_C__x``).
_TX_ENCODER = "_RTCRtpSender__encoder"
_TX_STARTED = "_RTCRtpSender__started"
_TX_SR = {
    "ntp": "_RTCRtpSender__ntp_timestamp",
    "rtp": "_RTCRtpSender__rtp_timestamp",
    "packets": "_RTCRtpSender__packet_count",
    "octets": "_RTCRtpSender__octet_count",
}
"""What ``RTCRtpSender._run_rtcp`` puts in its sender reports (RFC 3550 §6.4.1)."""


def checks() -> Checks:
    """The sender's seams, checked against the installed aiortc."""
    # Reading private methods to check them is the point of this function.
    tx_next = RTCRtpSender._next_encoded_frame  # noqa: SLF001 - sender seam
    tx_rtcp = RTCRtpSender._handle_rtcp_packet  # noqa: SLF001 - sender keyframe seam
    tx_rtcp_names = code_names(RTCRtpSender._run_rtcp)  # noqa: SLF001 - sender report seam
    tx_retransmit = RTCRtpSender._retransmit  # noqa: SLF001 - NACK seam
    return {
        "RTCRtpSender._run_rtcp reports the mangled ntp/rtp/packet/octet counters": (
            set(_TX_SR.values()) <= tx_rtcp_names and "RtcpSrPacket" in tx_rtcp_names
        ),
        "RTCRtpSender._handle_rtcp_packet awaits self._retransmit(seq) per NACK": (
            "_retransmit" in code_names(tx_rtcp) and inspect.iscoroutinefunction(tx_retransmit)
        ),
        "RTCRtpSender.__init__ sets _ssrc and _rtx_ssrc": (
            {"_ssrc", "_rtx_ssrc"} <= code_names(RTCRtpSender.__init__)
        ),
        "RTCRtpSender._next_encoded_frame packs with a lazily created encoder": (
            {_TX_ENCODER, "pack", "encode", "get_encoder"} <= code_names(tx_next)
        ),
        "RTCRtpSender._handle_rtcp_packet calls _send_keyframe on PLI/FIR": (
            "_send_keyframe" in code_names(tx_rtcp)
            and callable(getattr(RTCRtpSender, "_send_keyframe", None))
        ),
        "RTCRtpSender.__init__ sets the encoder and started flag": (
            {_TX_ENCODER, _TX_STARTED} <= code_names(RTCRtpSender.__init__)
        ),
        "aiortc.rtcrtpsender.RTP_HISTORY_SIZE is the sender's RTX history": isinstance(
            getattr(rtcrtpsender, "RTP_HISTORY_SIZE", None), int
        ),
    }


def sender_started(sender: RTCRtpSender) -> bool:
    return bool(getattr(sender, _TX_STARTED))


def set_sender_encoder(sender: RTCRtpSender, encoder: Encoder) -> None:
    """The encoder whose ``pack()`` the sender uses for anything that is not a frame."""
    setattr(sender, _TX_ENCODER, encoder)


def route_keyframe_requests(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` on the loop for every PLI/FIR the remote peer sends.

    aiortc's own handling only sets a flag its *encode* branch reads.
    Shadows the method on this instance only; ``_handle_rtcp_packet`` calls
    ``self._send_keyframe()``.
    """
    sender._send_keyframe = callback  # type: ignore[method-assign]  # noqa: SLF001 - keyframe seam


def extend_rtx_history(packets: int) -> None:
    """Make every ``RTCRtpSender`` keep at least ``packets`` packets for NACK/RTX."""
    current: int = getattr(rtcrtpsender, "RTP_HISTORY_SIZE")  # noqa: B009 - not re-exported
    setattr(rtcrtpsender, "RTP_HISTORY_SIZE", max(current, packets))  # noqa: B010


# -- the lean forwarder's sender: it sends RTP itself, aiortc keeps RTCP -------------


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The SSRCs the sender announced in SDP: media and RTX."""
    return int(sender._ssrc), int(sender._rtx_ssrc)  # noqa: SLF001 - lean send seam


def set_sender_report(sender: RTCRtpSender, ntp: int, rtp: int, packets: int, octets: int) -> None:
    """What the sender's next RTCP sender report says (it sends one every 0.5–1.5 s).

    ``ntp`` (64-bit NTP time) and ``rtp`` (RTP timestamp) must name the same
    instant; ``packets``/``octets`` are what was sent on its SSRC.
    """
    setattr(sender, _TX_SR["ntp"], ntp)
    setattr(sender, _TX_SR["rtp"], rtp & 0xFFFFFFFF)
    setattr(sender, _TX_SR["packets"], packets)
    setattr(sender, _TX_SR["octets"], octets)


def sender_report(sender: RTCRtpSender) -> dict[str, int]:
    """The values ``set_sender_report`` set (for tests)."""
    return {key: int(getattr(sender, name)) for key, name in _TX_SR.items()}


def route_retransmissions(sender: RTCRtpSender, callback: Callable[[int], None]) -> None:
    """Call ``callback(seq)`` for every sequence number the viewer NACKs (RFC 4585 §6.2.1).

    Shadows the sender's ``_retransmit`` (it looks in aiortc's own history,
    which the lean path never fills) on this instance only.
    """

    async def retransmit(sequence_number: int) -> None:
        callback(sequence_number)

    sender._retransmit = retransmit  # type: ignore[method-assign]  # noqa: SLF001 - NACK seam


def observe_rtcp(sender: RTCRtpSender, callback: Callable[[AnyRtcpPacket], None]) -> None:
    """Call ``callback(packet)`` for every RTCP packet routed to ``sender`` (receiver
    reports, REMB naming its SSRC, NACK, PLI), before aiortc handles it as usual."""
    handle = sender._handle_rtcp_packet  # noqa: SLF001 - feedback seam

    async def observed(packet: AnyRtcpPacket) -> None:
        callback(packet)
        await handle(packet)

    sender._handle_rtcp_packet = observed  # type: ignore[method-assign]  # noqa: SLF001 - feedback seam
