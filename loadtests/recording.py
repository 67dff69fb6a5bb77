"""``python -m loadtests recording``: what recording costs, and how fast clips are cut.

1. **Recorder CPU per stream.** A loopback aiortc publisher sends a
   pre-encoded clip (720p30 H.264 constrained baseline at 1.5 Mbit/s, GOP 2 s,
   plus 20 ms Opus) at real-time pace for ``--seconds`` to a pass-through
   publisher session; the recorder reads its relays as the node does
   (``media.recordtap.feed``). Reported: the recording worker thread's CPU
   time (``time.thread_time``) and the event loop's CPU time spent in
   ``Recording.put``, per second of media, as % of one core (``put_wall_us``
   is the wall time of a put: it includes waiting for the GIL while the
   worker muxes, which is the worker's CPU, already counted).
   With ``--codec vp8`` the publisher sends VP8 (a phone without H.264) and
   the recording goes through one VP8 → H.264 transcode (``media.transcode``):
   its thread's CPU per second of media is ``transcode_cpu_pct``. With
   ``--costream WxH`` a second publisher (a KOC, H.264 at that size) is drawn
   into the recording all along (``media.composite``): ``transcode_cpu_pct``
   is then the composer's (two decodes and one encode).
2. **Cut speed.** ``--cut-seconds`` + 10 s of the same clip are recorded
   unpaced, then a ``--cut-seconds`` clip is cut (remux) and the replay built;
   reported as media seconds per wall second. No video is decoded or encoded
   for either (the thumbnail's one decoded frame is timed separately).

The last stdout line is JSON with ``"ok": true`` and the figures, or
``{"ok": false, "reason": ...}`` with none (exit code 1; see
``loadtests.verdict``) when the run crashed or anything was decoded or
encoded on the recording or cutting path (``encode_ops``; the thumbnail's
one decoded frame is not counted). The machine may be
shared: figures vary by run; the CPU figures are thread CPU time, not wall
time, so other load on the machine inflates them only a little.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from loadtests.clip import encode_clip
from loadtests.stats import log
from loadtests.verdict import Outcome
from loadtests.verdict import run as run_verdict
from media import clipper, metrics
from media.composite import PipComposer
from media.peers import codec_preferences, create_peer_connection
from media.recorder import RecorderConfig, Recording
from media.recordtap import RecordingFeed
from media.sessions import accept_publisher
from media.transcode import Vp8ToH264

VIDEO_TB = fractions.Fraction(1, 90000)
AUDIO_TB = fractions.Fraction(1, 48000)


def encode_opus(seconds: float) -> list[bytes]:
    ctx: Any = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = 48000, "stereo", "s16", 64000
    ctx.time_base = AUDIO_TB
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=960)
    out: list[bytes] = []
    with av.open("sine=frequency=440:sample_rate=48000", format="lavfi") as source:
        for frame in source.decode(audio=0):
            for chunk in resampler.resample(frame):
                out += [bytes(p) for p in ctx.encode(chunk)]
            if len(out) >= seconds * 50:
                break
    return out


class Paced(MediaStreamTrack):
    """Replays encoded frames at their rate with increasing pts (a camera's encoder)."""

    def __init__(self, kind: str, frames: list[tuple[bytes, bool]], step: int, interval: float):
        super().__init__()
        self.kind = kind
        self.frames, self.step, self.interval = frames, step, interval
        self.n = 0
        self.t0: float | None = None

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        self.t0 = self.t0 if self.t0 is not None else loop.time()
        await asyncio.sleep(max(0.0, self.t0 + self.n * self.interval - loop.time()))
        data, key = self.frames[self.n % len(self.frames)]
        packet = av.Packet(data)
        packet.pts = self.n * self.step
        packet.time_base = VIDEO_TB if self.kind == "video" else AUDIO_TB
        packet.is_keyframe = key
        self.n += 1
        return packet


class TimedRecording(Recording):
    """A Recording that adds up the event loop's CPU time spent in ``put``.

    Thread CPU time, not wall time: a put that loses the GIL to the worker
    (which then muxes) would otherwise count the worker's time twice."""

    put_s = 0.0
    put_wall_s = 0.0
    puts = 0

    def put(self, kind: str, packet: Any, arrived: float | None = None) -> None:
        t, w = time.thread_time(), time.perf_counter()
        super().put(kind, packet, arrived)
        self.put_s += time.thread_time() - t
        self.put_wall_s += time.perf_counter() - w
        self.puts += 1


async def paced_publisher(
    video: list[tuple[bytes, bool]], audio: list[bytes] | None, mime: str
) -> tuple[Any, Any]:
    """A loopback aiortc publisher at real-time pace and its pass-through session."""
    pc = create_peer_connection()
    tracks = [Paced("video", video, 3000, 1 / 30)]
    if audio is not None:
        tracks.append(Paced("audio", [(a, True) for a in audio], 960, 0.02))
    for track in tracks:
        tr = pc.addTransceiver(track, direction="sendonly")
        tr.setCodecPreferences(codec_preferences(track.kind, mime if track.kind ==
                                                 "video" else "audio/opus"))  # fmt: skip
    await pc.setLocalDescription(await pc.createOffer())
    answer, session = await accept_publisher(str(pc.localDescription.sdp))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, session


Frames = list[tuple[bytes, bool]]


async def recorder_cpu(
    video: Frames, audio: list[bytes], seconds: float, directory: Path,
    codec: str = "h264", guest: Frames | None = None,
) -> dict[str, Any]:  # fmt: skip
    mime = {"h264": "video/H264", "vp8": "video/VP8"}[codec]
    pc, session = await paced_publisher(video, audio, mime)
    rec = TimedRecording(directory, audio=True, config=RecorderConfig())
    transcoders: list[Vp8ToH264 | PipComposer] = []
    feeder = RecordingFeed(
        rec, session.relays, lambda t, running: transcoders.append(t) if running else None
    )
    task = asyncio.ensure_future(feeder.run())
    for _ in range(400):  # the first keyframe, within 20 s
        if rec.started_at is not None:
            break
        await asyncio.sleep(0.05)
    guest_pc = None
    if guest is not None:  # a KOC co-streams: drawn in from the host's next key frame
        guest_pc, guest_session = await paced_publisher(guest, None, "video/H264")
        feeder.set_guest(guest_session.relays["video"])
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    media_s = time.monotonic() - t0
    await session.close()
    await pc.close()
    if guest_pc is not None:
        await guest_pc.close()
    await task
    await asyncio.get_running_loop().run_in_executor(None, rec.join, 30)

    def pct(codecs: Iterable[Vp8ToH264 | PipComposer]) -> float:
        return round(100 * sum(c.stats.cpu_s for c in codecs) / media_s, 2)

    return {
        "media_s": round(media_s, 1),
        "worker_cpu_pct": round(100 * rec.stats.cpu_s / media_s, 2),
        "loop_put_pct": round(100 * rec.put_s / media_s, 3),
        "put_us": round(1e6 * rec.put_s / max(1, rec.puts), 2),
        "put_wall_us": round(1e6 * rec.put_wall_s / max(1, rec.puts), 2),
        "frames": rec.stats.frames_muxed,
        "dropped": rec.stats.dropped,
        "segments": rec.stats.segments,
        # VP8 only: the decode + encode of the recording (off the forward path)
        "transcode_cpu_pct": pct(t for t in transcoders if isinstance(t, Vp8ToH264)),
        # a co-stream only: two decodes + one encode (from the host's first key frame on)
        "composite_cpu_pct": pct(t for t in transcoders if isinstance(t, PipComposer)),
        "transcode_dropped": sum(t.stats.dropped for t in transcoders),
    }


def cut_speed(video: list[tuple[bytes, bool]], audio: list[bytes], seconds: float,
              directory: Path) -> dict[str, Any]:  # fmt: skip
    rec = Recording(directory, audio=True, config=RecorderConfig(queue_frames=1_000_000))
    rec.start()
    frames = round((seconds + 10) * 30)
    ai = 0
    for vi in range(frames):
        while ai * 0.02 <= vi / 30:
            p = av.Packet(audio[ai % len(audio)])
            p.pts, p.time_base, p.is_keyframe = ai * 960, AUDIO_TB, True
            rec.put("audio", p)
            ai += 1
        data, key = video[vi % len(video)]
        p = av.Packet(data)
        p.pts, p.time_base, p.is_keyframe = vi * 3000, VIDEO_TB, key
        rec.put("video", p)
    rec.finish()
    rec.join(120)
    clip = directory / "clip.mp4"
    t = time.perf_counter()
    cut = clipper.cut_clip(rec.dir, rec.segments(), 4.0, 4.0 + seconds, clip)
    cut_wall = time.perf_counter() - t
    t = time.perf_counter()
    clipper.thumbnail(clip, directory / "clip.jpg")
    thumb_wall = time.perf_counter() - t
    t = time.perf_counter()
    replay = clipper.build_replay(rec.dir, directory / "replay.mp4")
    replay_wall = time.perf_counter() - t
    return {
        "clip_s": round(cut.duration, 2),
        "clip_cut_speed_x": round(cut.duration / cut_wall, 1),
        "thumbnail_ms": round(1000 * thumb_wall, 1),
        "replay_s": round(replay.duration, 2),
        "replay_speed_x": round(replay.duration / replay_wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests recording", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0, help="paced recording (CPU)")
    parser.add_argument("--cut-seconds", type=float, default=60.0, help="clip length to cut")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--bitrate", type=int, default=1_500_000)
    parser.add_argument(
        "--codec",
        choices=("h264", "vp8"),
        default="h264",
        help="the publisher's video (vp8: recorded through one transcode)",
    )
    parser.add_argument(
        "--costream",
        default="",
        help="a KOC's size (e.g. 640x360) co-streaming H.264 all along: the recording is "
        "the picture-in-picture composite",
    )
    opts = parser.parse_args(argv)
    return run_verdict("recording", lambda: measure(opts))


def measure(opts: argparse.Namespace) -> Outcome:
    width, height = (int(x) for x in opts.size.split("x"))
    log(f"encoding a {opts.size} clip once ...")
    video = encode_clip(width, height, 30, opts.bitrate, 10.0, 2.0, codec=opts.codec).frames
    h264 = (
        video
        if opts.codec == "h264"
        else encode_clip(width, height, 30, opts.bitrate, 10.0, 2.0).frames
    )
    audio = encode_opus(10.0)
    metrics.codec_ops.reset()
    with tempfile.TemporaryDirectory() as tmp:
        log(f"recording {opts.seconds:.0f} s at real-time pace ...")
        guest = None
        if opts.costream:
            gw, gh = (int(x) for x in opts.costream.split("x"))
            guest = encode_clip(gw, gh, 30, opts.bitrate // 3, 10.0, 2.0).frames
        cpu = asyncio.run(
            recorder_cpu(video, audio, opts.seconds, Path(tmp) / "paced", opts.codec, guest)
        )
        log(f"cutting a {opts.cut_seconds:.0f} s clip ...")
        cut = cut_speed(h264, audio, opts.cut_seconds, Path(tmp) / "cut")
    result = {"size": opts.size, "bitrate": opts.bitrate, "codec": opts.codec,
              "costream": opts.costream or None, "recorder": cpu,
              **cut,
              "encode_ops": metrics.codec_ops.value}  # fmt: skip
    ops = result["encode_ops"]
    return result, [f"{ops} decode/encode operations on the recording path"] if ops else []


if __name__ == "__main__":
    raise SystemExit(main())
