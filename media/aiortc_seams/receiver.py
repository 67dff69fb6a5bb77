"""The receiver's seams: its decoder queue and jitter buffer, its track's queue, PLI upstream.

``media.passthrough`` replaces the queue an ``RTCRtpReceiver`` puts
``(codec, JitterFrame)`` on, so frames reach the track encoded; it swaps the
jitter buffer and reads the depayloaded data the receiver stores on each
packet. Every private name is read or set here, one accessor per seam.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import rtcpeerconnection, rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver, decoder_worker
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from media.aiortc_seams.introspect import Checks, code_names

# Name-mangled private attributes (``self.__x`` inside class ``C`` is ``_C__x``).
_RX_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RX_ERROR = "_RTCRtpReceiver__decoder_error"
_RX_STARTED = "_RTCRtpReceiver__started"
_RX_JITTER = "_RTCRtpReceiver__jitter_buffer"


def checks() -> Checks:
    """The receiver's seams, checked against the installed aiortc."""
    # Reading private methods to check them is the point of this function.
    rx_handle = RTCRtpReceiver._handle_rtp_packet  # noqa: SLF001 - receiver seam
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
        "RTCRtpReceiver builds a RemoteBitrateEstimator and only calls its add()": (
            "RemoteBitrateEstimator" in code_names(RTCRtpReceiver.__init__)
            and "add" in code_names(rx_handle)
        ),
        "RemoteStreamTrack keeps its frames in _queue": (
            "_queue" in code_names(RemoteStreamTrack.__init__)
        ),
        "the receiver stores the depayloaded data as packet._data for the jitter buffer": (
            "_data" in code_names(rx_handle) and "_data" in code_names(JitterBuffer._remove_frame)  # noqa: SLF001 - jitter buffer seam
        ),
    }


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


class LazyBitrateEstimator:
    """aiortc's ``RemoteBitrateEstimator``, built when the first packet is added.

    Every video receiver builds one (an 8,000-bucket rate window: about a
    third of the CPU an answer costs), also on a viewer's connection, whose
    receiver never gets a packet.
    """

    __slots__ = ("_estimator",)

    def __init__(self) -> None:
        self._estimator: RemoteBitrateEstimator | None = None

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        if self._estimator is None:
            self._estimator = RemoteBitrateEstimator()
        return self._estimator.add(
            arrival_time_ms=arrival_time_ms, abs_send_time=abs_send_time,
            payload_size=payload_size, ssrc=ssrc,
        )  # fmt: skip


def build_bitrate_estimators_lazily() -> None:
    """Make every ``RTCRtpReceiver`` build its bitrate estimator on first use (idempotent)."""
    vars(rtcrtpreceiver)["RemoteBitrateEstimator"] = LazyBitrateEstimator


# -- simulcast: one receive chain per rid behind one m-section (media.ridemux) ------

_RX_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_RX_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"
_RX_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_TRANSCEIVER_EXTENSIONS = "_headerExtensions"
_TRANSCEIVER_CODECS = "_codecs"


def simulcast_checks() -> Checks:
    """The seams ``media.ridemux`` uses, checked against the installed aiortc."""
    rx_handle = RTCRtpReceiver._handle_rtp_packet  # noqa: SLF001 - rid demux seam
    return {
        "RTCRtpReceiver keeps its estimator, RTX map and RTCP SSRC": (
            {_RX_ESTIMATOR, _RX_RTX_SSRC, _RX_RTCP_SSRC} <= code_names(RTCRtpReceiver.__init__)
        ),
        "RTCRtpReceiver._handle_rtp_packet unwraps RTX by its RTX map": (
            _RX_RTX_SSRC in code_names(rx_handle) and "unwrap_rtx" in code_names(rx_handle)
        ),
        "RTCRtpReceiver.receive registers with the transport": (
            "_register_rtp_receiver" in code_names(RTCRtpReceiver.receive)
        ),
        "RTCDtlsTransport unregisters receivers": callable(
            getattr(RTCDtlsTransport, "_unregister_rtp_receiver", None)
        ),
        "the answer lists a transceiver's _headerExtensions": (
            _TRANSCEIVER_EXTENSIONS
            in code_names(rtcpeerconnection.create_media_description_for_transceiver)
        ),
        "the answer lists a transceiver's _codecs (with their rtcpFeedback)": (
            _TRANSCEIVER_CODECS
            in code_names(rtcpeerconnection.create_media_description_for_transceiver)
        ),
    }


def add_header_extensions(
    transceiver: RTCRtpTransceiver, extensions: list[RTCRtpHeaderExtensionParameters]
) -> None:
    """Negotiate ``extensions`` (with the offer's ids) on ``transceiver`` besides aiortc's own.

    Call after ``setRemoteDescription`` and before ``createAnswer``: the answer
    lists them, and the transport's header-extension map parses them.
    """
    current: list[RTCRtpHeaderExtensionParameters] = getattr(transceiver, _TRANSCEIVER_EXTENSIONS)
    known = {x.uri for x in current}
    current += [x for x in extensions if x.uri not in known]


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs ``transceiver`` negotiated (its own copies: the answer lists them, each
    with its ``rtcpFeedback``); set after ``setRemoteDescription``."""
    codecs: list[RTCRtpCodecParameters] = getattr(transceiver, _TRANSCEIVER_CODECS)
    return codecs


def rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC ``receiver`` sends its RTCP as (None until it starts)."""
    ssrc: int | None = getattr(receiver, _RX_RTCP_SSRC)
    return ssrc


def layer_receiver(main: RTCRtpReceiver) -> RTCRtpReceiver:
    """A receiver with its own track, jitter buffer and RTCP statistics, on ``main``'s
    transport, for one simulcast layer. Packets reach it only from ``deliver``."""
    layer = RTCRtpReceiver(main.track.kind, main.transport)
    layer._track = RemoteStreamTrack(kind=main.track.kind)  # noqa: SLF001 - rid demux seam
    return layer


async def start_layer_receiver(
    layer: RTCRtpReceiver, main: RTCRtpReceiver, parameters: RTCRtpReceiveParameters
) -> None:
    """Start ``layer`` like ``main`` (same codecs, RTCP SSRC), without a route of its own:
    the transport keeps routing the m-section's packets to ``main``."""
    if receiver_started(layer):
        return
    layer._set_rtcp_ssrc(getattr(main, _RX_RTCP_SSRC))  # noqa: SLF001 - rid demux seam
    await layer.receive(parameters)
    main.transport._unregister_rtp_receiver(layer)  # noqa: SLF001 - rid demux seam


def share_bitrate_estimator(receivers: list[RTCRtpReceiver]) -> None:
    """One REMB estimator for all layers: the publisher is told the whole path's
    estimate, not one per layer (a low layer's REMB would cap every layer)."""
    shared = LazyBitrateEstimator()
    for receiver in receivers:
        setattr(receiver, _RX_ESTIMATOR, shared)


def map_rtx(layer: RTCRtpReceiver, rtx_ssrc: int, media_ssrc: int) -> None:
    """RTX packets on ``rtx_ssrc`` repair ``media_ssrc`` (learned from repaired-rid)."""
    rtx: dict[int, int] = getattr(layer, _RX_RTX_SSRC)
    rtx[rtx_ssrc] = media_ssrc


def intercept_rtp(
    main: RTCRtpReceiver, handler: Callable[[RtpPacket, int], Awaitable[None]]
) -> None:
    """Hand every RTP packet the transport routes to ``main`` to ``handler`` instead.

    Shadows the method on this instance only (the transport calls
    ``receiver._handle_rtp_packet(packet, arrival_time_ms=...)``).
    """

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        await handler(packet, arrival_time_ms)

    main._handle_rtp_packet = handle  # type: ignore[method-assign]  # noqa: SLF001 - rid demux seam


async def deliver(layer: RTCRtpReceiver, packet: RtpPacket, arrival_time_ms: int) -> None:
    """Give ``packet`` to a layer receiver as the transport would."""
    await layer._handle_rtp_packet(packet, arrival_time_ms)  # noqa: SLF001 - rid demux seam


def on_receive(
    main: RTCRtpReceiver,
    started: Callable[[RTCRtpReceiveParameters], Awaitable[None]],
    stopped: Callable[[], Awaitable[None]],
) -> None:
    """Call ``started(parameters)`` when ``main`` starts receiving, ``stopped()`` when it stops."""
    receive, stop = main.receive, main.stop

    async def receive_and_start(parameters: RTCRtpReceiveParameters) -> None:
        await receive(parameters)
        await started(parameters)

    async def stop_all() -> None:
        await stopped()
        await stop()

    main.receive = receive_and_start  # type: ignore[method-assign]
    main.stop = stop_all  # type: ignore[method-assign]
