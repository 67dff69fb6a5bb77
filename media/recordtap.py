"""The event-loop side of a recording: a publisher's relays feed a ``Recording``.

The recorder is one more reader of each relay (a ``RelayTrack``, like a
viewer), so the forwarding path is unchanged: no hook in the relay, no extra
work per viewer packet. Its task does two things per frame: ``Recording.put``
(an O(1) enqueue) and, for video, ask the publisher for a keyframe when none
came for ``segment_s`` seconds (browsers send keyframes only when asked, and
segments start on keyframes). Requests go through the relay's own limiter
(at most one a second).

Where the video comes from, frame by frame:

- H.264 from the host: stream copy (the frames as they came);
- VP8 from the host: through a ``media.transcode.Vp8ToH264`` (it makes its
  own IDRs: no periodic requests then);
- while a KOC co-streams (``RecordingFeed.set_guest``): a
  ``media.composite.PipComposer`` draws the KOC into the host's picture. It
  starts on a host key frame and ends on one (the KOC gone, the host's next
  key frame closes it and, once its last frames are in, stream copy or the
  transcoder resumes from that key frame), so the recording switches between
  whole GOPs; the recorder starts a new init segment where the SPS changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from aiortc.mediastreams import MediaStreamError

from media.composite import HOST, PipComposer
from media.recorder import Recording
from media.relay import Relay, RelayTrack
from media.transcode import TranscodeConfig, Vp8ToH264

if TYPE_CHECKING:
    from media.passthrough import EncodedPacket

log = logging.getLogger("livecore.recordtap")

#: Told when a transcoder or composer starts (True) and when it has ended (False).
OnCodec = Callable[[Vp8ToH264 | PipComposer, bool], None]


def needs_transcode(relays: Mapping[str, Relay]) -> bool:
    """Whether the video of ``relays`` is VP8 (recorded through a transcoder). Pure."""
    video = relays.get("video")
    return video is not None and video.codec.lower() == "video/vp8"


class RecordingFeed:
    """Feeds one recording from the host's relays, and a KOC's video while it co-streams."""

    def __init__(
        self,
        recording: Recording,
        relays: Mapping[str, Relay],
        on_codec: OnCodec | None = None,
        layers: Sequence[Relay] = (),
    ) -> None:
        self.recording = recording
        self.sources = {k: r for k, r in relays.items() if k in ("audio", "video") and not r.closed}
        #: A simulcast host's layers, best first: the recording takes the best one that
        #: sends (a browser sends its top layer only once its uplink estimate allows,
        #: seconds or never), switching on key frames (see ``_pick``).
        self.layers = [r for r in layers if not r.closed] if len(layers) > 1 else []
        self._current: Relay | None = None
        self._heard: dict[Relay, float] = {}
        self._on_codec = on_codec
        self.transcoder: Vp8ToH264 | None = None
        self.composer: PipComposer | None = None
        #: The KOC's video relay while one co-streams (set_guest), and its reader.
        self._guest: Relay | None = None
        self._guest_task: asyncio.Task[None] | None = None
        self._want_composite = False
        #: The KOC relay the running composer draws (a KOC who re-publishes, after a
        #: network switch, is a new relay: the composer is started again for it).
        self._drawn: Relay | None = None

    # -- co-streams ----------------------------------------------------------------

    def set_guest(self, relay: Relay | None) -> None:
        """A KOC's video to draw in (None: the co-stream ended). The switch happens at
        the host's next key frame (asked for now)."""
        if relay is self._guest:
            return
        if self._guest_task is not None:
            self._guest_task.cancel()
            self._guest_task = None
        self._guest = relay
        self._want_composite = relay is not None and not relay.closed
        video = self.sources.get("video")
        if video is not None:
            video.request_keyframe("recorder")

    async def _read_guest(self, relay: Relay, composer: PipComposer) -> None:
        try:
            track = relay.subscribe()
        except MediaStreamError:
            self.set_guest(None)
            return
        try:
            while True:
                composer.put_guest(await track.recv())
        except MediaStreamError:
            if self._guest is relay:
                self.set_guest(None)  # the KOC left: back to the host alone
        finally:
            track.stop()

    # -- the host's video, frame by frame ---------------------------------------------

    async def _video(self, packet: EncodedPacket) -> None:
        key = bool(packet.is_keyframe)
        stale = not self._want_composite or self._drawn is not self._guest
        if self.composer is not None and key and stale:  # the KOC left, or came back anew
            await self._end_composite()
        if self.composer is None and key and self._want_composite and self._guest is not None:
            self._start_composite(self._guest)
        if self.composer is not None:
            self.composer.put_host(packet)
        elif self.transcoder is not None:
            self.transcoder.put(packet)
        else:
            self.recording.put("video", packet)

    def _start_composite(self, guest: Relay) -> None:
        video = self.sources["video"]

        def ask(role: str) -> None:
            (video if role == HOST else guest).request_keyframe("recorder")

        self.composer = PipComposer(
            self._put_video, loop=asyncio.get_running_loop(), host_codec=video.codec,
            guest_codec=guest.codec, request_keyframe=ask,
            config=TranscodeConfig(keyframe_s=self.recording.config.segment_s),
            name=f"composite-{self.recording.name}",
        )  # fmt: skip
        self._tell(self.composer, True)
        self._drawn = guest
        self._guest_task = asyncio.get_running_loop().create_task(
            self._read_guest(guest, self.composer), name=f"record-guest-{self.recording.name}"
        )
        log.info("recording %s: the co-stream is drawn in", self.recording.name)

    async def _end_composite(self) -> None:
        composer, self.composer = self.composer, None
        if composer is None:
            return
        if self._guest_task is not None and self._drawn is self._guest:
            self._guest_task.cancel()
            self._guest_task = None
        self._drawn = None
        await self._drain(composer)
        log.info("recording %s: the host alone again", self.recording.name)

    async def _drain(self, codec: Vp8ToH264 | PipComposer) -> None:
        """Close ``codec`` and wait until its last frames are in the recording."""
        codec.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(codec.join, 10.0)
            await asyncio.sleep(0)  # its call_soon_threadsafe puts run first
        self._tell(codec, False)

    def _put_video(self, packet: EncodedPacket, arrived: float) -> None:
        self.recording.put("video", packet, arrived)

    def _tell(self, codec: Vp8ToH264 | PipComposer, running: bool) -> None:
        if self._on_codec is not None:
            self._on_codec(codec, running)

    # -- the run ---------------------------------------------------------------------

    async def run(self) -> None:
        """Record until every source ends, then finish the recording. Starts the
        recording's worker thread; cancelling this task also finishes the recording
        (what was queued is still written)."""
        recording = self.recording
        recording.start()
        if needs_transcode(self.sources):
            video = self.sources["video"]
            self.transcoder = Vp8ToH264(
                self._put_video,
                loop=asyncio.get_running_loop(),
                request_keyframe=functools.partial(video.request_keyframe, "recorder"),
                config=TranscodeConfig(keyframe_s=recording.config.segment_s),
                name=f"transcode-{recording.name}",
            )
            self._tell(self.transcoder, True)
        try:
            pumps = []
            for kind, relay in self.sources.items():
                if kind == "video" and self.layers:
                    pumps += [self._pump(kind, layer.subscribe(), layer) for layer in self.layers]
                else:
                    pumps.append(self._pump(kind, relay.subscribe(), relay))
            await asyncio.gather(*pumps)
        except MediaStreamError:
            pass
        finally:
            if self._guest_task is not None:
                self._guest_task.cancel()
            for codec in (self.composer, self.transcoder):
                if codec is not None:
                    await self._drain(codec)
            self.composer = self.transcoder = None
            with contextlib.suppress(Exception):
                recording.finish()

    def _pick(self, layer: Relay, key: bool, now: float) -> bool:
        """Whether a frame of simulcast ``layer`` is recorded: the layer recorded now, or
        a key frame of a better layer (switch up) or of any layer once the recorded one
        went quiet for ``LAYER_QUIET_S`` (switch down). A better layer that sends but
        has given no key frame yet is asked for one (its relay limits the asking)."""
        self._heard[layer] = now
        current = self._current
        if layer is current:
            return True
        rank, ranked = self.layers.index(layer), len(self.layers)
        if current is not None:
            ranked = self.layers.index(current)
        quiet = current is None or now - self._heard.get(current, 0.0) > LAYER_QUIET_S
        if key and (rank < ranked or quiet):
            self._current = layer
            log.info("recording %s: from layer %d", self.recording.name, rank)
            return True
        if rank < ranked:
            layer.request_keyframe("recorder")
        return False

    async def _pump(self, kind: str, track: RelayTrack, relay: Relay) -> None:
        loop = asyncio.get_running_loop()
        segment_s = self.recording.config.segment_s
        last_key = loop.time()
        layered = kind == "video" and bool(self.layers)
        try:
            while True:
                packet = await track.recv()
                if kind != "video":
                    self.recording.put(kind, packet)
                    continue
                if layered and not self._pick(relay, bool(packet.is_keyframe), loop.time()):
                    continue
                await self._video(packet)
                if self.transcoder is not None and self.composer is None:
                    continue  # the transcoder makes its own IDRs
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
    recording: Recording, relays: Mapping[str, Relay], on_codec: OnCodec | None = None
) -> None:
    """Record ``relays`` (kind → relay) until they all end (see :class:`RecordingFeed`)."""
    await RecordingFeed(recording, relays, on_codec).run()


#: Seconds without a frame after which the recorded simulcast layer is given up for
#: the next one that sends a key frame.
LAYER_QUIET_S = 1.0
