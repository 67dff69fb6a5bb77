"""The event-loop side of a recording: a publisher's relays feed a ``Recording``.

The recorder is one more reader of each relay (a ``RelayTrack``, like a
viewer), so the forwarding path is unchanged: no hook in the relay, no extra
work per viewer packet. Its task does two things per frame: ``Recording.put``
(an O(1) enqueue) and, for video, ask the publisher for a keyframe when none
came for ``segment_s`` seconds (browsers send keyframes only when asked, and
segments start on keyframes). Requests go through the relay's own limiter
(at most one a second). VP8 video goes through a ``media.transcode.Vp8ToH264``
on its way in (it makes its own IDRs: no periodic requests then).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Mapping

from aiortc.mediastreams import MediaStreamError

from media.recorder import Recording
from media.relay import Relay, RelayTrack
from media.transcode import TranscodeConfig, Vp8ToH264


def needs_transcode(relays: Mapping[str, Relay]) -> bool:
    """Whether the video of ``relays`` is VP8 (recorded through a transcoder). Pure."""
    video = relays.get("video")
    return video is not None and video.codec.lower() == "video/vp8"


async def _pump(
    recording: Recording,
    kind: str,
    relay: Relay,
    track: RelayTrack,
    transcoder: Vp8ToH264 | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    segment_s = recording.config.segment_s
    last_key = loop.time()
    put = recording.put
    try:
        while True:
            packet = await track.recv()
            if transcoder is not None:  # VP8: its own IDRs, no key frames asked for
                transcoder.put(packet)
                continue
            put(kind, packet)
            if kind == "video":
                now = loop.time()
                if packet.is_keyframe:
                    last_key = now
                elif now - last_key >= segment_s:
                    last_key = now
                    relay.request_keyframe("recorder")
    except MediaStreamError:
        pass
    finally:
        track.stop()


async def feed(
    recording: Recording,
    relays: Mapping[str, Relay],
    on_transcoder: Callable[[Vp8ToH264, bool], None] | None = None,
) -> None:
    """Record ``relays`` (kind → relay) until they all end, then finish the recording.

    Starts the recording's worker thread, and for VP8 video a transcoder
    (``on_transcoder(transcoder, running)`` is told when it starts and ends). Cancelling
    this task also finishes the recording (what was queued is still written).
    """
    sources = {k: r for k, r in relays.items() if k in ("audio", "video") and not r.closed}
    recording.start()
    transcoder = None
    if needs_transcode(sources):
        video = sources["video"]
        transcoder = Vp8ToH264(
            functools.partial(recording.put, "video"),
            loop=asyncio.get_running_loop(),
            request_keyframe=functools.partial(video.request_keyframe, "recorder"),
            config=TranscodeConfig(keyframe_s=recording.config.segment_s),
            name=f"transcode-{recording.name}",
        )
        if on_transcoder is not None:
            on_transcoder(transcoder, True)
    try:
        tracks = {kind: relay.subscribe() for kind, relay in sources.items()}
        await asyncio.gather(
            *(_pump(recording, kind, sources[kind], track,
                    transcoder if kind == "video" else None)
              for kind, track in tracks.items())
        )  # fmt: skip
    except MediaStreamError:
        pass
    finally:
        if transcoder is not None:
            transcoder.close()
            # the last frames reach the loop before the recording is finished
            with contextlib.suppress(Exception):
                await asyncio.to_thread(transcoder.join, 10.0)
                await asyncio.sleep(0)
            if on_transcoder is not None:
                on_transcoder(transcoder, False)
        with contextlib.suppress(Exception):
            recording.finish()
