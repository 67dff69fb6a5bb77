"""A phone that publishes a synthetic H.264 clip over WHIP, from inside a lab namespace.

The lab's Chromium publishes its fake camera (640×360 in the lab tests, its
bitrate whatever the browser's congestion control settles on). To hold the
publisher to a known stream, 720p30 H.264 at 1.5 Mbit/s, this process
publishes ``loadtests.clip``'s test pattern instead: encoded once with
libx264 (constrained baseline, a keyframe every ``--gop-s``), then sent at
real-time pace by aiortc, its host candidate on the phone's own address.

    python -m loadtests.netlab.publisher --url http://203.0.113.10:8080 --room r1 \\
        --address 198.51.100.18 --resolution 1280x720 --bitrate 1.5M   # token: $LIVECORE_TOKEN

It prints one JSON line once frames flow (``{"live": true, ...}``), runs until
SIGTERM, ``--max-s`` or its connection failing (the node closed the session),
ends its session (WHIP DELETE) and prints a last line (``{"live": false,
"frames": N, "ended_by": ...}``; exit code 1 unless a signal ended it).
:func:`start_publisher` runs it in a phone's namespace with :meth:`Lab.spawn`
(stopped by PID with the lab).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiortc import RTCSessionDescription

from loadtests.clip import ClipTrack, encode_clip, parse_bitrate, parse_resolution
from loadtests.netlab.lab import Host, Lab
from loadtests.whep import whep_delete, whep_post
from media.aiortc_seams import sender as sender_seams
from media.peers import PeerConfig, codec_preferences, create_peer_connection

LIVE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ClipSpec:
    """The stream a publisher sends."""

    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate: int = 1_500_000
    gop_s: float = 1.0
    clip_s: float = 4.0

    def argv(self) -> list[str]:
        return ["--resolution", f"{self.width}x{self.height}", "--fps", str(self.fps),
                "--bitrate", str(self.bitrate), "--gop-s", str(self.gop_s),
                "--clip-s", str(self.clip_s)]  # fmt: skip


@dataclass
class RunningPublisher:
    """A publisher process in a lab namespace and what it said when it went live."""

    proc: asyncio.subprocess.Process
    out: Path
    live: dict[str, Any]


async def start_publisher(
    lab: Lab, phone: Host, base_url: str, room: str, token: str, clip: ClipSpec,
    *, log: str, timeout_s: float = LIVE_TIMEOUT_S,
) -> RunningPublisher:  # fmt: skip
    """Publish ``clip`` to ``room`` from ``phone``; returns once frames flow (its first
    line), or raises with the end of its stderr."""
    argv = [sys.executable, "-m", "loadtests.netlab.publisher", "--url", base_url,
            "--room", room, "--address", phone.address, *clip.argv()]  # fmt: skip
    env = {**os.environ, "LIVECORE_TOKEN": token}
    proc = await lab.spawn(phone, argv, log=log, env=env)
    out = lab.workdir / f"{log}.out"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        lines = out.read_text().splitlines()
        if lines:
            return RunningPublisher(proc, out, json.loads(lines[0]))
        if proc.returncode is not None or loop.time() > deadline:
            err = (lab.workdir / f"{log}.err").read_text(errors="replace")
            raise RuntimeError(f"publisher {log} not live within {timeout_s} s: {err[-1500:]}")
        await asyncio.sleep(0.1)


async def publish(args: argparse.Namespace, token: str) -> int:
    width, height = args.resolution
    clip = await asyncio.to_thread(
        encode_clip, width, height, args.fps, args.bitrate, args.clip_s, args.gop_s
    )
    config = PeerConfig(host_addresses=(args.address,))
    pc = create_peer_connection(config)
    track = ClipTrack(clip)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(codec_preferences("video", "video/H264"))
    # aiortc's own keyframe path only sets a flag its encoder reads: restart the clip.
    sender_seams.route_keyframe_requests(transceiver.sender, track.request_keyframe)
    stop = asyncio.Event()
    ended_by = ["signal"]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def state_changed() -> None:  # the node closed the session, or ICE failed
        if pc.connectionState in ("failed", "closed") and not stop.is_set():
            ended_by[0] = f"connection {pc.connectionState}"
            stop.set()

    pc.on("connectionstatechange", state_changed)
    session_url = None
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        try:
            await pc.setLocalDescription(await pc.createOffer())
            answer, session_url = await whep_post(
                client, f"{args.url}/whip/{args.room}", token, str(pc.localDescription.sdp),
                time.monotonic() + LIVE_TIMEOUT_S,
            )  # fmt: skip
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            deadline = time.monotonic() + LIVE_TIMEOUT_S
            while len(track.sent_at) < clip.fps:  # a second of frames: the node has a GOP
                if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
                    raise RuntimeError(f"publisher connection {pc.connectionState}, no media")
                await asyncio.sleep(0.05)
            print(json.dumps({"live": True, "width": clip.width, "height": clip.height,
                              "fps": clip.fps, "clip_bitrate": round(clip.bitrate)}),
                  flush=True)  # fmt: skip
            try:
                async with asyncio.timeout(args.max_s):
                    await stop.wait()
            except TimeoutError:
                ended_by[0] = "--max-s"
        finally:
            await whep_delete(client, session_url)
            await pc.close()
    print(json.dumps({"live": False, "frames": len(track.sent_at), "ended_by": ended_by[0],
                      "keyframe_requests": track.keyframe_requests}), flush=True)  # fmt: skip
    return 0 if ended_by[0] == "signal" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.netlab.publisher")
    parser.add_argument("--url", required=True, help="the node, as the phone sees it")
    parser.add_argument("--room", required=True)
    parser.add_argument("--address", required=True, help="the phone's address (ICE host)")
    parser.add_argument("--resolution", type=parse_resolution, default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=parse_bitrate, default="1.5M")
    parser.add_argument("--gop-s", type=float, default=1.0)
    parser.add_argument("--clip-s", type=float, default=4.0)
    parser.add_argument("--max-s", type=float, default=900.0, help="stop by itself after")
    args = parser.parse_args(argv)
    token = os.environ.get("LIVECORE_TOKEN")
    if not token:
        parser.error("the host's token goes in $LIVECORE_TOKEN")
    return asyncio.run(publish(args, token))


if __name__ == "__main__":
    sys.exit(main())
