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
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import aioice
import aiortc
import pylibsrtp
from aioice import Candidate, Connection, turn
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aioice.utils import random_string as aioice_random_string
from aiortc import rtcrtpsender
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver, decoder_worker
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket, is_rtcp
from pylibsrtp import _binding as srtp_binding

SUPPORTED_AIORTC = "1.16."
SUPPORTED_AIOICE = "0.13."

# Name-mangled private attributes (``self.__x`` inside class ``C`` is ``_C__x``).
_RX_QUEUE = "_RTCRtpReceiver__decoder_queue"
_RX_ERROR = "_RTCRtpReceiver__decoder_error"
_RX_STARTED = "_RTCRtpReceiver__started"
_RX_JITTER = "_RTCRtpReceiver__jitter_buffer"
_TX_ENCODER = "_RTCRtpSender__encoder"
_TX_STARTED = "_RTCRtpSender__started"
_TX_SR = {
    "ntp": "_RTCRtpSender__ntp_timestamp",
    "rtp": "_RTCRtpSender__rtp_timestamp",
    "packets": "_RTCRtpSender__packet_count",
    "octets": "_RTCRtpSender__octet_count",
}
"""What ``RTCRtpSender._run_rtcp`` puts in its sender reports (RFC 3550 §6.4.1)."""
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
    host_needed = {"create_datagram_endpoint", "StunProtocol", "Candidate", "_protocols"}
    host_needed |= {"candidate_foundation", "candidate_priority", "local_candidate"}
    tx_rtcp_names = code_names(RTCRtpSender._run_rtcp)  # noqa: SLF001 - sender report seam
    tx_retransmit = RTCRtpSender._retransmit  # noqa: SLF001 - NACK seam
    dtls_send = RTCDtlsTransport._send_rtp  # noqa: SLF001 - lean send seam
    srtp_session = pylibsrtp.Session.__init__
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
        "RTCDtlsTransport._send_rtp protects with _tx_srtp and sends on the ICE transport": (
            {"_tx_srtp", "protect", "_send"} <= code_names(dtls_send)
        ),
        "aioice Connection.sendto sends on the nominated pair's protocol": (
            {"_nominated", "protocol", "remote_addr"} <= code_names(Connection.sendto)
        ),
        "aioice get_component_candidates binds one StunProtocol per host address": (
            host_needed <= code_names(Connection.get_component_candidates)
        ),
        "pylibsrtp.Session keeps its srtp_t * in _srtp; srtp_protect(srtp_t, void *, int *)": (
            "_srtp" in code_names(srtp_session)
            and str(srtp_binding.ffi.typeof(srtp_binding.lib.srtp_protect))
            == "<ctype 'srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)'>"
        ),
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
        "aioice Connection keeps its StunProtocols in _protocols, its ufrag in _local_username": (
            {"_protocols", "_local_username"} <= code_names(Connection.__init__)
        ),
        "aiortc.rtp.is_rtcp tells SRTCP from SRTP by the second byte": (
            is_rtcp(bytes([0x80, 200])) and not is_rtcp(bytes([0x80, 0x80 | 96]))
        ),
        "aiortc.rtcrtpsender.RTP_HISTORY_SIZE is the sender's RTX history": isinstance(
            getattr(rtcrtpsender, "RTP_HISTORY_SIZE", None), int
        ),
    }


SUPPORTED_PYLIBSRTP = "1.0."


def verify() -> None:
    """Raise ``ImportError`` unless both pins hold and every seam is where it was measured."""
    versions = {
        "aiortc": (getattr(aiortc, "__version__", "?"), SUPPORTED_AIORTC),
        "aioice": (getattr(aioice, "__version__", "?"), SUPPORTED_AIOICE),
        "pylibsrtp": (getattr(pylibsrtp, "__version__", "?"), SUPPORTED_PYLIBSRTP),
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


BindSocket = Callable[[str], socket.socket]
"""Returns a UDP socket bound on the given local address (e.g. to a port in a range)."""


class HostMux(Protocol):
    """A shared UDP socket for many connections (``media.udpmux.UdpMux``)."""

    def attach(self, protocol: StunProtocol, ufrag: str) -> Any: ...
    def ufrag_taken(self, ufrag: str) -> bool: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def gather_on(
    connection: Connection,
    addresses: Sequence[str],
    bind: BindSocket | None = None,
    muxes: Mapping[str, HostMux] | None = None,
) -> None:
    """Make ``connection.gather_candidates()`` gather host candidates on ``addresses`` only.

    aioice's ``Connection.gather_candidates`` with the address list replaced
    (aioice 0.13 has no option for it); an instance override. With ``bind``,
    host candidates use the sockets it returns (aioice binds port 0, any
    ephemeral port): the host part of aioice's ``get_component_candidates``
    is done here, and aioice's own then adds only STUN/TURN candidates. An
    ``OSError`` from ``bind`` (e.g. no free port) propagates. With ``muxes``
    (address → shared socket), the host candidate of each address is that
    socket, shared with other connections (the local ufrag is made unique
    among them first).
    """
    wanted = list(addresses)
    setattr(connection, _GATHER_ON, wanted)

    async def gather_candidates() -> None:
        if connection._local_candidates_start:  # noqa: SLF001 - ICE seam
            return
        connection._local_candidates_start = True  # noqa: SLF001 - ICE seam
        for component in sorted(connection._components):  # noqa: SLF001 - ICE seam
            if muxes is not None:
                connection._local_candidates += _muxed_host_candidates(  # noqa: SLF001 - ICE seam
                    connection, component, wanted, muxes
                )
            elif bind is not None:
                connection._local_candidates += await _bound_host_candidates(  # noqa: SLF001 - ICE seam
                    connection, component, wanted, bind
                )
            own = bind is not None or muxes is not None
            connection._local_candidates += await connection.get_component_candidates(  # noqa: SLF001 - ICE seam
                component=component, addresses=[] if own else wanted
            )
        connection._local_candidates_end = True  # noqa: SLF001 - ICE seam

    connection.gather_candidates = gather_candidates  # type: ignore[method-assign]


def _host_candidate(protocol: StunProtocol, component: int, host: str, port: int) -> Candidate:
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host"),
        host=host,
        port=port,
        type="host",
    )
    return protocol.local_candidate


def _muxed_host_candidates(
    connection: Connection, component: int, addresses: list[str], muxes: Mapping[str, HostMux]
) -> list[Candidate]:
    """Host candidates on shared sockets: one ``StunProtocol`` per address, the mux's socket."""
    candidates: list[Candidate] = []
    usable = [a for a in addresses if a in muxes]
    while any(muxes[a].ufrag_taken(connection.local_username) for a in usable):
        connection._local_username = aioice_random_string(4)  # noqa: SLF001 - ICE seam
    for address in usable:
        protocol = StunProtocol(connection)
        muxes[address].attach(protocol, connection.local_username)
        host, port = muxes[address].get_extra_info("sockname")[:2]
        connection._protocols.append(protocol)  # noqa: SLF001 - ICE seam
        candidates.append(_host_candidate(protocol, component, host, port))
    return candidates


async def _bound_host_candidates(
    connection: Connection, component: int, addresses: list[str], bind: BindSocket
) -> list[Candidate]:
    """aioice's host-candidate gathering (``get_component_candidates``) on ``bind``'s sockets."""
    loop = asyncio.get_running_loop()
    candidates: list[Candidate] = []
    for address in addresses:
        sock = bind(address)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: StunProtocol(connection), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        connection._protocols.append(protocol)  # noqa: SLF001 - ICE seam
        candidates.append(_host_candidate(protocol, component, host, port))
    return candidates


def gathering_addresses(connection: Connection) -> list[str] | None:
    """The addresses ``gather_on`` restricted ``connection`` to, or None."""
    addresses: list[str] | None = getattr(connection, _GATHER_ON, None)
    return addresses


def stun_protocols(connection: Connection) -> list[StunProtocol]:
    """The UDP protocols (one per local socket) of a connection that gathered."""
    protocols: list[StunProtocol] = connection._protocols  # noqa: SLF001 - lean receive seam
    return protocols


# -- lean forwarding -----------------------------------------------------------------


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


def tx_srtp(dtls: RTCDtlsTransport) -> pylibsrtp.Session | None:
    """The DTLS transport's outbound SRTP session (None until DTLS is connected)."""
    session: pylibsrtp.Session | None = dtls._tx_srtp  # noqa: SLF001 - lean send seam
    return session


def srtp_pointers(session: pylibsrtp.Session) -> tuple[int, int]:
    """``(srtp_t, &srtp_protect)`` as integers, for C code that protects on this session.

    Both live in pylibsrtp's cffi module (its bundled libsrtp 2.7); the
    ``srtp_t`` stays valid as long as ``session`` does.
    """
    ffi, lib = srtp_binding.ffi, srtp_binding.lib
    context = session._srtp[0]  # noqa: SLF001 - pylibsrtp seam
    return int(ffi.cast("uintptr_t", context)), int(
        ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))
    )


def nominated_route(connection: Connection) -> tuple[socket.socket, tuple[Any, ...]] | None:
    """The socket and remote address ICE selected for component 1, or None."""
    pair = connection._nominated.get(1)  # noqa: SLF001 - lean send seam
    if pair is None or pair.protocol.transport is None:
        return None
    sock = pair.protocol.transport.get_extra_info("socket")
    if sock is None:
        return None
    return sock, tuple(pair.remote_addr)


def local_ports(connection: Connection) -> list[int]:
    """The local UDP ports of a connection's sockets (for tests and metrics)."""
    return [int(p.local_candidate.port) for p in stun_protocols(connection)]
