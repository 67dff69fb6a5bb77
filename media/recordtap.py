"""The event-loop side of a recording: a publisher's relays feed a ``Recording``.

The recorder is one more reader of each relay (a ``RelayTrack``, like a
viewer), so the forwarding path is unchanged: no hook in the relay, no extra
work per viewer packet. Its task does two things per frame: ``Recording.put``
(an O(1) enqueue) and, for video, ask the publisher for a keyframe when none
came for ``segment_s`` seconds (browsers send keyframes only when asked, and
segments start on keyframes). Requests go through the relay's own limiter
(at most one a second).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from aiortc.mediastreams import MediaStreamError

from media.recorder import Recording
from media.relay import Relay, RelayTrack


async def _pump(recording: Recording, kind: str, relay: Relay, track: RelayTrack) -> None:
    loop = asyncio.get_running_loop()
    segment_s = recording.config.segment_s
    last_key = loop.time()
    put = recording.put
    try:
        while True:
            packet = await track.recv()
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


async def feed(recording: Recording, relays: Mapping[str, Relay]) -> None:
    """Record ``relays`` (kind → relay) until they all end, then finish the recording.

    Starts the recording's worker thread. Cancelling this task also finishes
    the recording (what was queued is still written).
    """
    sources = {k: r for k, r in relays.items() if k in ("audio", "video") and not r.closed}
    recording.start()
    try:
        tracks = {kind: relay.subscribe() for kind, relay in sources.items()}
        await asyncio.gather(
            *(_pump(recording, kind, sources[kind], track) for kind, track in tracks.items())
        )
    except MediaStreamError:
        pass
    finally:
        with contextlib.suppress(Exception):
            recording.finish()
