"""WHEP viewers for media load runs: aiortc sets up, a counter receives.

A *lean* viewer is a real WebRTC peer for the server: aiortc gathers its
(loopback-only) candidate, answers ICE checks, completes the DTLS handshake
and derives the SRTP keys, and keeps answering ICE consent checks for as long
as it lives. What it does not do is aiortc's per-packet receive work
(SRTP unprotect, ``RtpPacket.parse``, routing, jitter buffer, depacketising,
decoding), which costs far more than the server's send path and would make
the load side, not the server, the bottleneck.

The seam (aiortc 1.16 / aioice 0.13, checked at import)
---------------------------------------------------------
``RTCDtlsTransport`` (``aiortc/rtcdtlstransport.py``) runs one task,
``__run``, that loops on ``_recv_next``: it awaits the next datagram from
``RTCIceTransport._recv`` (= aioice ``Connection.recv``, an ``asyncio.Queue``
fed by ``StunProtocol.datagram_received``, which first tries to parse every
datagram as STUN) and dispatches on the first byte: 20–63 is DTLS, 128–191
is SRTP/SRTCP (``is_rtcp``: second byte 192–208), which it unprotects,
parses and routes to the ``RTCRtpReceiver``. So each received RTP packet
costs a failed STUN parse, a queue hand-off and task wake-up, an SRTP
unprotect, a parse and the receiver's jitter buffer before anything is
decoded.

``install_lean_receive`` cuts in below all of that, at the datagram: it
swaps the protocol of the ICE connection's UDP transport (public asyncio API
``transport.set_protocol``) for an ``RtpCounter``. Its
``datagram_received`` recognises SRTP (not SRTCP) by those same first two
bytes and handles it in place; every other datagram (STUN consent checks,
DTLS, SRTCP sender reports) is handed to aioice's own ``StunProtocol`` and
reaches ``RTCDtlsTransport._recv_next`` exactly as before, so ICE and DTLS
keep working and closing the connection still closes the socket through
aioice. SRTP leaves the 12-byte RTP header in clear (RFC 3711 §3.1), so the
counter reads the marker bit, payload type, sequence number and timestamp
without keys: it counts packets and bytes, counts frames (a frame ends at a
packet with the marker bit), counts sequence gaps as lost packets and, while
recording, keeps ``(RTP timestamp, arrival time)`` of each completed frame.
Nothing reaches the ``RTCRtpReceiver``, so it never builds receive
statistics and therefore sends no RTCP receiver reports and no NACKs
(aiortc only sends an RR with report blocks); no decoder is ever created
(the receiver's idle decoder thread just waits for the end). The server's
sender reports still arrive and are unprotected (about one a second).

A *probe* viewer is a stock aiortc peer that depacketises and decodes
(H.264 via PyAV) what it receives; it measures the time from its WHEP POST
to its first decoded frame.

Viewers are run by worker processes (``lean_worker_main``,
``probe_worker_main``) that a benchmark driver talks to over a pipe; see
``loadtests.media``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx
from aioice.ice import Connection as IceConnection
from aioice.ice import StunProtocol
from aiortc import RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport
from aiortc.rtp import is_rtcp

from media.passthrough import code_names
from media.peers import MediaPeerConnection, PeerConfig, create_peer_connection

LOOPBACK_CONFIG = PeerConfig(ice_servers=(), host_addresses=("127.0.0.1",))
"""Every peer of a load run: no ICE servers, host candidates on 127.0.0.1 only."""

RETRY_AFTER_MAX_S = 5.0
RETRY_503_FOR_S = 20.0
"""How long one offer is retried while the server answers 503 (at capacity)."""
PROBE_TIMEOUT_S = 15.0
"""A probe that has no decoded frame this long after its POST gives up."""


def _verify_seams() -> None:
    """Raise ``ImportError`` if the receive path the lean counter replaces has moved."""
    checks = {
        "RTCDtlsTransport._recv_next reads RTCIceTransport._recv, unprotects SRTP": (
            {"_recv", "unprotect", "unprotect_rtcp", "_handle_rtp_data"}
            <= code_names(RTCDtlsTransport._recv_next)
        ),
        "RTCIceTransport receives through its aioice connection": (
            "_connection" in code_names(RTCIceTransport.__init__)
        ),
        "aioice StunProtocol.datagram_received feeds Connection.data_received": (
            "data_received" in code_names(StunProtocol.datagram_received)
        ),
        "aioice Connection keeps its StunProtocols in _protocols": (
            "_protocols" in code_names(IceConnection.__init__)
        ),
        "aiortc.rtp.is_rtcp tells SRTCP from SRTP by the second byte": (
            is_rtcp(bytes([0x80, 200])) and not is_rtcp(bytes([0x80, 0x80 | 96]))
        ),
    }
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        raise ImportError(f"loadtests.rtcviewer: aiortc/aioice seams moved: {missing}")


_verify_seams()


# -- the lean receive path ---------------------------------------------------------


class RtpCounter(asyncio.DatagramProtocol):
    """Counts SRTP packets by their clear header; passes everything else to aioice.

    ``video_pt`` is the negotiated video payload type (set once the answer
    is known); RTP of other payload types (RTX) is only counted in
    ``packets``/``bytes``. While ``recording``, each completed video frame
    appends its RTP timestamp to ``frame_ts`` and its arrival
    (``time.monotonic()``) to ``frame_at``.
    """

    __slots__ = ("_stun", "bytes", "first_frame_at", "frame_at", "frame_ts", "frames",
                 "last_seq", "lost", "packets", "recording", "video_pt")  # fmt: skip

    def __init__(self, stun: StunProtocol) -> None:
        self._stun = stun
        self.video_pt = -1
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.lost = 0
        self.last_seq = -1
        self.first_frame_at: float | None = None
        self.recording = False
        self.frame_ts: list[int] = []
        self.frame_at: list[float] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        first = data[0] if data else 0
        if first < 128 or first > 191 or len(data) < 12 or 192 <= data[1] <= 208:
            # STUN, DTLS or SRTCP: aioice's path, on to RTCDtlsTransport._recv_next.
            self._stun.datagram_received(data, addr)
            return
        self.packets += 1
        self.bytes += len(data)
        second = data[1]
        if second & 0x7F != self.video_pt:
            return
        seq = data[2] << 8 | data[3]
        last = self.last_seq
        if last >= 0:
            gap = (seq - last) & 0xFFFF
            if gap == 0 or gap >= 0x8000:  # duplicate or late: not a new packet
                return
            self.lost += gap - 1
        self.last_seq = seq
        if second & 0x80:  # marker bit: the last packet of a frame
            self.frames += 1
            if self.recording:
                self.frame_ts.append(int.from_bytes(data[4:8], "big"))
                self.frame_at.append(time.monotonic())
            elif self.first_frame_at is None:
                self.first_frame_at = time.monotonic()

    def error_received(self, exc: Exception) -> None:
        self._stun.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stun.connection_lost(exc)  # aioice's close() waits for this


def _ice_connection(pc: MediaPeerConnection) -> IceConnection:
    transports = {id(t.receiver.transport): t.receiver.transport for t in pc.getTransceivers()}
    if len(transports) != 1:
        raise RuntimeError(f"expected one bundled transport, found {len(transports)}")
    (dtls,) = transports.values()
    connection: IceConnection = dtls.transport._connection
    return connection


def install_lean_receive(pc: MediaPeerConnection) -> RtpCounter:
    """Put an ``RtpCounter`` under ``pc``'s only ICE socket (after candidates are gathered).

    Call after ``setLocalDescription`` (which gathers) and before the
    connection is established. With loopback-only gathering there is exactly
    one host candidate, hence one socket; anything else is refused.
    """
    protocols = _ice_connection(pc)._protocols
    if len(protocols) != 1:
        raise RuntimeError(f"lean receive needs exactly one ICE socket, found {len(protocols)}")
    stun = protocols[0]
    counter = RtpCounter(stun)
    stun.transport.set_protocol(counter)
    return counter


def video_payload_type(answer_sdp: str) -> int:
    """The payload type the answerer sends video with (its first video codec)."""
    for m in aiortc_sdp.SessionDescription.parse(answer_sdp).media:
        if m.kind == "video" and m.rtp.codecs and m.rtp.codecs[0].payloadType is not None:
            return int(m.rtp.codecs[0].payloadType)
    raise ValueError("the answer has no video codec")


# -- WHEP over HTTP -------------------------------------------------------------------


class WhepRefused(Exception):
    """The server did not answer a WHEP offer with 201 (status and body in the message)."""


async def whep_post(
    client: httpx.AsyncClient, url: str, token: str, offer_sdp: str, deadline: float
) -> tuple[str, str]:
    """POST an offer to ``url``; returns (answer SDP, absolute session URL).

    A 503 is retried after its ``Retry-After`` (at most ``RETRY_AFTER_MAX_S``)
    for at most ``RETRY_503_FOR_S`` and never past ``deadline`` (``time.monotonic()``).
    """
    deadline = min(deadline, time.monotonic() + RETRY_503_FOR_S)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"}
    while True:
        answer = await client.post(url, content=offer_sdp.encode(), headers=headers)
        if answer.status_code == 201:
            location = answer.headers.get("location")
            if not location:
                raise WhepRefused("201 without a Location header")
            return answer.text, str(answer.url.join(location))
        retry = answer.headers.get("retry-after")
        if answer.status_code == 503 and retry is not None:
            with contextlib.suppress(ValueError):
                wait = min(RETRY_AFTER_MAX_S, max(0.1, float(retry)))
                if time.monotonic() + wait < deadline:
                    await asyncio.sleep(wait)
                    continue
        raise WhepRefused(f"{answer.status_code} {answer.text[:200]}")


async def whep_delete(client: httpx.AsyncClient, session_url: str | None) -> None:
    if session_url:
        with contextlib.suppress(httpx.HTTPError):
            await client.delete(session_url, timeout=5)


# -- viewers -----------------------------------------------------------------------


@dataclass
class LeanViewer:
    """A WHEP viewer whose receive path is an ``RtpCounter``."""

    pc: MediaPeerConnection
    counter: RtpCounter
    session_url: str | None = None
    posted_at: float = 0.0

    @classmethod
    async def join(
        cls, client: httpx.AsyncClient, url: str, token: str, deadline: float
    ) -> LeanViewer:
        pc = create_peer_connection(LOOPBACK_CONFIG)
        viewer: LeanViewer | None = None
        try:
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            viewer = cls(pc, install_lean_receive(pc))
            viewer.posted_at = time.monotonic()
            answer, viewer.session_url = await whep_post(
                client, url, token, str(pc.localDescription.sdp), deadline
            )
            viewer.counter.video_pt = video_payload_type(answer)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            while viewer.counter.first_frame_at is None:
                if pc.connectionState in ("failed", "closed"):
                    raise ConnectionError(f"connection {pc.connectionState}")
                if time.monotonic() > deadline:
                    raise TimeoutError("no video frame before the deadline")
                await asyncio.sleep(0.05)
            return viewer
        except BaseException:
            if viewer is not None:
                await whep_delete(client, viewer.session_url)
            await pc.close()
            raise

    async def close(self, client: httpx.AsyncClient) -> None:
        await whep_delete(client, self.session_url)
        await self.pc.close()


@dataclass
class ProbeResult:
    ttff_ms: float | None = None
    answer_ms: float | None = None
    """WHEP POST → answer received."""
    connected_ms: float | None = None
    """WHEP POST → ICE and DTLS up (``connectionState`` connected)."""
    frames: int = 0
    packets: int = 0
    size: tuple[int, int] | None = None
    error: str | None = None


async def run_probe(
    client: httpx.AsyncClient, url: str, token: str, stay_s: float, deadline: float
) -> ProbeResult:
    """Join as a stock (decoding) aiortc viewer; time WHEP POST → first decoded frame.

    Stays ``stay_s`` after the first frame (counting decoded frames), then leaves.
    """
    result = ProbeResult()
    pc = create_peer_connection(LOOPBACK_CONFIG)
    frames: asyncio.Queue[float] = asyncio.Queue(maxsize=1024)  # ~30 s of frames
    session_url = None

    async def consume(track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                result.size = (frame.width, frame.height)
                if not frames.full():  # read as they come; a full queue only skips counting
                    frames.put_nowait(time.monotonic())

    tasks: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(consume(track))))
    posted = time.monotonic()

    def state_changed() -> None:
        if pc.connectionState == "connected" and result.connected_ms is None:
            result.connected_ms = 1000 * (time.monotonic() - posted)

    pc.on("connectionstatechange", state_changed)
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        posted = time.monotonic()
        answer, session_url = await whep_post(
            client, url, token, str(pc.localDescription.sdp), deadline
        )
        result.answer_ms = 1000 * (time.monotonic() - posted)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        first = await asyncio.wait_for(frames.get(), timeout=max(0.1, deadline - posted))
        result.ttff_ms = 1000 * (first - posted)
        result.frames = 1
        until = min(deadline, first + stay_s)
        while (left := until - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(frames.get(), timeout=left)
                result.frames += 1
        stats = await transceiver.receiver.getStats()
        result.packets = sum(
            int(getattr(s, "packetsReceived", 0)) for s in stats.values() if s.type == "inbound-rtp"
        )
    except (TimeoutError, WhepRefused, ConnectionError, httpx.HTTPError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await whep_delete(client, session_url)
        await pc.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


# -- worker processes ------------------------------------------------------------------


@dataclass
class WorkerSpec:
    """What a load process needs: where to join, as whom, and when to give up."""

    whep_url: str
    tokens: list[str]
    deadline_wall: float
    """``time.time()`` after which the process stops by itself, whatever the driver says."""
    cpu: int
    concurrency: int = 8
    nice: int = 0
    probe_offsets: list[float] = field(default_factory=list)
    probe_stay_s: float = 1.0


def _start_process(spec: WorkerSpec) -> None:
    from loadtests.local import pin

    pin(os.getpid(), spec.cpu)
    if spec.nice:
        with contextlib.suppress(OSError):
            os.nice(spec.nice)


def _run(coro_factory: Callable[[], Any]) -> None:
    try:
        import uvloop

        uvloop.run(coro_factory())
    except ImportError:  # pragma: no cover
        asyncio.run(coro_factory())


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(30.0), limits=httpx.Limits(max_connections=64), trust_env=False
    )


async def _recv(pipe: Connection, deadline_wall: float) -> Any:
    """The driver's next message, or None once the deadline passed or the driver went."""

    def wait() -> Any:
        while time.time() < deadline_wall:
            try:
                if pipe.poll(0.5):
                    return pipe.recv()
            except (EOFError, OSError):
                return None
        return None

    return await asyncio.to_thread(wait)


def lean_worker_main(pipe: Connection, spec: WorkerSpec) -> None:
    """A load process of lean viewers; talks to ``loadtests.media`` over ``pipe``.

    Protocol: → ``("progress", joined, failed)`` while joining, then
    ``("joined", joined, failed, errors)``; ← ``"start"``: record;
    ← ``"stop"``: → ``("result", {...})``; ← ``"close"``: leave and exit.
    """
    _start_process(spec)
    _run(lambda: _lean_worker(pipe, spec))


async def _lean_worker(pipe: Connection, spec: WorkerSpec) -> None:
    viewers: list[LeanViewer] = []
    errors: dict[str, int] = {}
    failed = 0
    gate = asyncio.Semaphore(spec.concurrency)
    join_deadline = time.monotonic() + max(5.0, spec.deadline_wall - time.time())
    async with _client() as client:

        async def join(token: str) -> None:
            nonlocal failed
            async with gate:
                try:
                    viewers.append(
                        await LeanViewer.join(client, spec.whep_url, token, join_deadline)
                    )
                except Exception as exc:  # counted and reported
                    failed += 1
                    key = f"{type(exc).__name__}: {str(exc)[:120]}"
                    errors[key] = errors.get(key, 0) + 1
            done = len(viewers) + failed
            if done % 25 == 0 or done == len(spec.tokens):
                pipe.send(("progress", len(viewers), failed))

        await asyncio.gather(*(join(t) for t in spec.tokens))
        pipe.send(("joined", len(viewers), failed, errors))
        started = stopped = 0.0
        base: list[tuple[int, int, int, int]] = []
        while (message := await _recv(pipe, spec.deadline_wall)) not in (None, "close"):
            if message == "start":
                base = [(v.counter.packets, v.counter.bytes, v.counter.frames, v.counter.lost)
                        for v in viewers]  # fmt: skip
                for v in viewers:
                    v.counter.recording = True
                started = time.monotonic()
            elif message == "stop":
                stopped = time.monotonic()
                for v in viewers:
                    v.counter.recording = False
                per_viewer = []
                for v, (p0, b0, f0, l0) in zip(viewers, base, strict=True):
                    c = v.counter
                    per_viewer.append({
                        "packets": c.packets - p0, "bytes": c.bytes - b0,
                        "frames": c.frames - f0, "lost": c.lost - l0,
                        "frame_ts": c.frame_ts, "frame_at": c.frame_at,
                        "open": v.pc.connectionState == "connected",
                    })  # fmt: skip
                pipe.send(("result", {"window_s": stopped - started, "viewers": per_viewer}))
        await asyncio.gather(*(v.close(client) for v in viewers), return_exceptions=True)


def probe_worker_main(pipe: Connection, spec: WorkerSpec) -> None:
    """A load process of probe viewers, one per token, each joining at its offset.

    ← ``("start", t0)``: probe ``i`` joins at ``t0 + probe_offsets[i]``
    (``time.monotonic()``); → ``("result", [ProbeResult as dict, ...])``
    once all are done; ← ``"close"``: exit.
    """
    _start_process(spec)
    _run(lambda: _probe_worker(pipe, spec))


async def _probe_worker(pipe: Connection, spec: WorkerSpec) -> None:
    message = await _recv(pipe, spec.deadline_wall)
    if not (isinstance(message, tuple) and message[0] == "start"):
        return
    t0 = float(message[1])
    deadline = time.monotonic() + max(1.0, spec.deadline_wall - time.time())
    async with _client() as client:

        async def probe(token: str, offset: float) -> ProbeResult:
            await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
            mine = min(deadline, time.monotonic() + PROBE_TIMEOUT_S + spec.probe_stay_s)
            return await run_probe(client, spec.whep_url, token, spec.probe_stay_s, mine)

        results = await asyncio.gather(
            *(probe(t, o) for t, o in zip(spec.tokens, spec.probe_offsets, strict=True))
        )
    pipe.send(("result", [r.__dict__ for r in results]))
    await _recv(pipe, spec.deadline_wall)
