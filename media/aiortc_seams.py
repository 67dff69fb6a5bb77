"""Every private aiortc and aioice name livecore touches, in one place, checked at import.

livecore forwards encoded media through seams aiortc does not publish: the
receiver's decoder queue and jitter buffer, the sender's encoder and
keyframe hook, the ICE connection's candidate gathering and UDP protocols.
Reading or setting those is done here and only here, one accessor per seam,
each private access on its own line marked ``# noqa: SLF001`` with the seam
it belongs to; the rest of the code (``media.passthrough``, ``media.peers``,
``loadtests.leanrtp``) calls these functions.

``verify()`` runs when this module is imported: with another aiortc than the
pinned 1.16.x or aioice 0.13.x (pyproject pins aiortc), or if a seam moved,
``import media.aiortc_seams`` raises ``ImportError`` naming what is missing,
instead of the server quietly decoding (or crashing mid-stream) later.
Upgrading aiortc means re-reading the functions below against its source and
updating the pins.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

import aioice
import aiortc
from aioice import Connection
from aioice.ice import StunProtocol
from aiortc import rtcrtpsender
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver, decoder_worker
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket, is_rtcp

SUPPORTED_AIORTC = "1.16."
SUPPORTED_AIOICE = "0.13."

# Name-mangled private attributes (``self.__x`` inside class ``C`` is ``_C__x``).
_RX_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RX_ERROR = "_RTCRtpReceiver__decoder_error"
_RX_STARTED = "_RTCRtpReceiver__started"
_RX_JITTER = "_RTCRtpReceiver__jitter_buffer"
_TX_ENCODER = "_RTCRtpSender__encoder"
_TX_STARTED = "_RTCRtpSender__started"
_GATHER_ON = "livecore_host_addresses"
"""Our own mark on an aioice ``Connection``: the addresses ``gather_on`` restricted it to."""


def code_names(func: Any) -> set[str]:
    """Names a function's code (nested comprehensions and closures included) refers to."""
    names: set[str] = set()
    stack = [func.__code__]
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return names


def _checks() -> dict[str, bool]:
    # Reading private methods to check them is the point of this function.
    rx_handle = RTCRtpReceiver._handle_rtp_packet  # noqa: SLF001 - receiver seam
    tx_next = RTCRtpSender._next_encoded_frame  # noqa: SLF001 - sender seam
    tx_rtcp = RTCRtpSender._handle_rtcp_packet  # noqa: SLF001 - sender keyframe seam
    dtls_next = RTCDtlsTransport._recv_next  # noqa: SLF001 - lean receive seam
    gather = Connection.gather_candidates
    gather_needed = {"_local_candidates_start", "get_component_candidates", "_local_candidates"}
    gather_needed |= {"_local_candidates_end", "_components"}
    return {
        "RTCRtpReceiver.__init__ sets the decoder queue, error flag, started flag": (
            {_RX_QUEUE, _RX_ERROR, _RX_STARTED} <= code_names(RTCRtpReceiver.__init__)
        ),
        "RTCRtpReceiver._handle_rtp_packet puts frames on the decoder queue": (
            {_RX_QUEUE, "put", _RX_ERROR, "_send_rtcp_pli", _RX_JITTER} <= code_names(rx_handle)
        ),
        "RTCRtpReceiver.__init__ makes the jitter buffer": (
            _RX_JITTER in code_names(RTCRtpReceiver.__init__)
            and "_remove_frame" in code_names(JitterBuffer.add)
        ),
        "RTCRtpReceiver.receive starts decoder_worker on the decoder queue": (
            {_RX_QUEUE, "decoder_worker"} <= code_names(RTCRtpReceiver.receive)
        ),
        "decoder_worker(loop, input_q, output_q, decode_error) reads input_q.get()": (
            list(inspect.signature(decoder_worker).parameters)
            == ["loop", "input_q", "output_q", "decode_error"]
            and "get" in code_names(decoder_worker)
        ),
        "RemoteStreamTrack keeps its frames in _queue": (
            "_queue" in code_names(RemoteStreamTrack.__init__)
        ),
        "the receiver stores the depayloaded data as packet._data for the jitter buffer": (
            "_data" in code_names(rx_handle) and "_data" in code_names(JitterBuffer._remove_frame)  # noqa: SLF001 - jitter buffer seam
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
        "aioice Connection.gather_candidates(self) gathers per component": (
            gather_needed <= code_names(gather)
            and Connection.get_component_candidates.__code__.co_varnames[:3]
            == ("self", "component", "addresses")
        ),
        "RTCIceGatherer and RTCIceTransport share one aioice Connection": (
            "_connection" in code_names(RTCIceGatherer.__init__)
            and "_connection" in code_names(RTCIceTransport.__init__)
        ),
        "RTCDtlsTransport._recv_next reads RTCIceTransport._recv, unprotects SRTP": (
            {"_recv", "unprotect", "unprotect_rtcp", "_handle_rtp_data"} <= code_names(dtls_next)
        ),
        "aioice StunProtocol.datagram_received feeds Connection.data_received": (
            "data_received" in code_names(StunProtocol.datagram_received)
        ),
        "aioice Connection keeps its StunProtocols in _protocols": (
            "_protocols" in code_names(Connection.__init__)
        ),
        "aiortc.rtp.is_rtcp tells SRTCP from SRTP by the second byte": (
            is_rtcp(bytes([0x80, 200])) and not is_rtcp(bytes([0x80, 0x80 | 96]))
        ),
        "aiortc.rtcrtpsender.RTP_HISTORY_SIZE is the sender's RTX history": isinstance(
            getattr(rtcrtpsender, "RTP_HISTORY_SIZE", None), int
        ),
    }


def verify() -> None:
    """Raise ``ImportError`` unless both pins hold and every seam is where it was measured."""
    versions = {
        "aiortc": (getattr(aiortc, "__version__", "?"), SUPPORTED_AIORTC),
        "aioice": (getattr(aioice, "__version__", "?"), SUPPORTED_AIOICE),
    }
    for name, (found, pinned) in versions.items():
        if not found.startswith(pinned):
            raise ImportError(
                f"media.aiortc_seams needs {name} {pinned}x (its private receiver, sender and "
                f"ICE seams are pinned), found {found}; re-verify the seams and update"
            )
    missing = [name for name, ok in _checks().items() if not ok]
    if missing:
        raise ImportError(f"aiortc/aioice lack seams media.aiortc_seams relies on: {missing}")


verify()


# -- receiver ------------------------------------------------------------------------


def receiver_started(receiver: RTCRtpReceiver) -> bool:
    return bool(getattr(receiver, _RX_STARTED))


def receiver_frame_queue(receiver: RTCRtpReceiver) -> Any:
    """What the receiver puts ``(codec, JitterFrame)`` on (aiortc: a ``queue.Queue``)."""
    return getattr(receiver, _RX_QUEUE)


def set_receiver_frame_queue(receiver: RTCRtpReceiver, inbox: Any) -> None:
    """Replace that queue; ``inbox`` needs ``put(item)`` and ``get(block, timeout)``."""
    setattr(receiver, _RX_QUEUE, inbox)


def receiver_jitter_buffer(receiver: RTCRtpReceiver) -> JitterBuffer:
    buffer: JitterBuffer = getattr(receiver, _RX_JITTER)
    return buffer


def set_receiver_jitter_buffer(receiver: RTCRtpReceiver, buffer: JitterBuffer) -> None:
    setattr(receiver, _RX_JITTER, buffer)


def send_pli_with_next_packet(receiver: RTCRtpReceiver) -> None:
    """Set the receiver's decode-error flag: it sends a PLI with the next RTP packet."""
    error_flag: threading.Event = getattr(receiver, _RX_ERROR)
    error_flag.set()


def remote_track_queue(track: MediaStreamTrack) -> asyncio.Queue[Any]:
    """The queue a receiver's track (a ``RemoteStreamTrack``) returns frames from."""
    if not isinstance(track, RemoteStreamTrack):
        raise TypeError(f"not a receiver's track: {type(track).__name__}")
    queue: asyncio.Queue[Any] = track._queue  # noqa: SLF001 - receiver seam
    return queue


def rtp_payload(packet: RtpPacket) -> bytes:
    """The depacketised payload the receiver stored on ``packet`` for its jitter buffer."""
    data: bytes = packet._data  # type: ignore[attr-defined]  # noqa: SLF001 - jitter buffer seam
    return data


# -- sender --------------------------------------------------------------------------


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


# -- ICE -----------------------------------------------------------------------------


def ice_connection(gatherer: RTCIceGatherer) -> Connection:
    """The aioice ``Connection`` behind a gatherer (and its ``RTCIceTransport``)."""
    connection: Connection = gatherer._connection  # noqa: SLF001 - ICE seam
    return connection


def gathered(connection: Connection) -> bool:
    """True once the connection started gathering local candidates."""
    return bool(connection._local_candidates_start)  # noqa: SLF001 - ICE seam


def gather_on(connection: Connection, addresses: Sequence[str]) -> None:
    """Make ``connection.gather_candidates()`` gather host candidates on ``addresses`` only.

    aioice's ``Connection.gather_candidates`` with the address list replaced
    (aioice 0.13 has no option for it); an instance override.
    """
    wanted = list(addresses)
    setattr(connection, _GATHER_ON, wanted)

    async def gather_candidates() -> None:
        if connection._local_candidates_start:  # noqa: SLF001 - ICE seam
            return
        connection._local_candidates_start = True  # noqa: SLF001 - ICE seam
        for component in sorted(connection._components):  # noqa: SLF001 - ICE seam
            connection._local_candidates += await connection.get_component_candidates(  # noqa: SLF001 - ICE seam
                component=component, addresses=wanted
            )
        connection._local_candidates_end = True  # noqa: SLF001 - ICE seam

    connection.gather_candidates = gather_candidates  # type: ignore[method-assign]


def gathering_addresses(connection: Connection) -> list[str] | None:
    """The addresses ``gather_on`` restricted ``connection`` to, or None."""
    addresses: list[str] | None = getattr(connection, _GATHER_ON, None)
    return addresses


def stun_protocols(connection: Connection) -> list[StunProtocol]:
    """The UDP protocols (one per local socket) of a connection that gathered."""
    protocols: list[StunProtocol] = connection._protocols  # noqa: SLF001 - lean receive seam
    return protocols
