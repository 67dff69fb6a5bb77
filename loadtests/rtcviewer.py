"""WHEP viewers for media load runs: lean viewers that count, probes that decode.

A *lean* viewer (``LeanViewer``) is a real WebRTC peer whose receive path is
an ``RtpCounter`` (see ``loadtests.leanrtp``): aiortc sets it up, a counter
receives. A *probe* viewer (``run_probe``) is a stock aiortc peer that
depacketises and decodes (H.264 via PyAV) what it receives; it measures the
time from its WHEP POST to its first decoded frame.

Viewers are run by worker processes (``loadtests.rtcworkers``) that a
benchmark driver (``loadtests.media``) talks to over a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import httpx
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from loadtests.leanrtp import RtpCounter, install_lean_receive, video_payload_type
from loadtests.whep import LOOPBACK_CONFIG, WhepRefused, whep_delete, whep_post
from media.peers import MediaPeerConnection, create_peer_connection

PROBE_TIMEOUT_S = 15.0
"""A probe that has no decoded frame this long after its POST gives up."""


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
