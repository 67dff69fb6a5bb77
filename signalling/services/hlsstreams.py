"""A room's HLS across its streams: where a new stream's playlist continues, and when
it ends (for :class:`signalling.services.recording.RecordingPlane`).

- ``continuation(room, layer, cursors)``: a host who publishes again gets a new
  recording directory; each layer's playlist continues the room's previous one
  (read from this node's disk): the same media sequence, after an
  ``EXT-X-DISCONTINUITY``; when the previous stream was recorded on another node
  (its numbers kept in ``lc:{room}:hls`` by ``on_segment``), after its numbers,
  with the discontinuity sequence one past its last segment's.
- ``finalize_if_ended(room, directory)``: a stream that stops leaves its
  playlist paused (players keep reloading it); once the room has ended it
  gets ``#EXT-X-ENDLIST``, every rendition's (and, with ``--s3-hls``, the
  bucket's copies too).
- ``room_killed(kill)``: the room-end notice every node receives: the room's
  newest playlist on this disk ends, unless a recording here still runs (its
  end does it).
- ``waits``: the requests held for a part or segment (``hlswait``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from livecore.killswitch import Kill
from livecore.rooms import RoomStatus
from livecore.store import keys
from livecore.store.room_meta import RoomStore
from media.hlsmaster import PLAYLIST_RE, LayerNames
from media.hlsplaylist import parse
from media.mediadir import MediaDir
from media.recfiles import finalize
from media.segments import Continuation, Segment
from media.uploader import HlsFeed, Uploader
from signalling.services.hlswait import PlaylistWaits

log = logging.getLogger("livecore.recording")

#: The top layer's field in a room's ``lc:{room}:hls`` hash (not a layer name).
TOP = "-"
#: Per layer (``TOP`` for the top one): the next segment number and the last
#: segment's discontinuity sequence number.
Cursors = dict[str, tuple[int, int]]


class HlsStreams:
    def __init__(
        self,
        media: MediaDir,
        rooms: RoomStore,
        uploader: Uploader | None,
        recording_here: Callable[[str], bool],
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        self.media = media
        self.rooms = rooms
        self.uploader = uploader
        """Live HLS to the bucket (``--s3-hls``), or None."""
        self.waits = PlaylistWaits()
        self._recording_here = recording_here
        self._spawn = spawn

    def continuation(
        self, room: str, layer: str = "", cursors: Cursors | None = None
    ) -> Continuation | None:
        """Where the room's previous stream left a layer's playlist: the new stream
        continues its media sequence after a discontinuity. From this node's disk (its
        segments listed again), or, when the newest stream was recorded on another node
        (``cursors``, read before: ``cursors()``), after its last segment's numbers."""
        elsewhere = (cursors or {}).get(layer or TOP)
        previous = self.media.latest_stream(room)
        here: Continuation | None = None
        if previous is not None:
            try:
                text = (previous / LayerNames(layer).playlist).read_text()
                here = Continuation.after(parse(text))
            except (OSError, ValueError, KeyError) as exc:
                log.info("room %s: no playlist to continue here (%s)", room, exc)
        if elsewhere is not None and (here is None or elsewhere[0] > here.next_msn):
            return Continuation.elsewhere(*elsewhere)
        return here

    async def cursors(self, room: str) -> Cursors:
        """Each layer's last segment of the room's newest stream, wherever it was recorded
        (``{}`` when none is known or Valkey does not answer)."""
        try:
            raw = await self.rooms.redis.hgetall(keys.room(room, "hls"))
        except RedisError:
            return {}
        out: Cursors = {}
        for field, value in raw.items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            text = value.decode() if isinstance(value, bytes) else str(value)
            numbers = text.split(":")
            if len(numbers) == 2 and all(n.isdigit() for n in numbers):
                out[name] = (int(numbers[0]), int(numbers[1]))
        return out

    def on_segment(self, room: str, directory: Path, layer: str = "") -> Callable[[Segment], None]:
        """A layer's recording's ``on_segment`` (its thread): the segment to the bucket
        (``--s3-hls``), and its numbers to Valkey, so that a host publishing again at
        another node continues this layer's numbering there."""
        feed = self.feed(room, directory, layer)
        loop = asyncio.get_running_loop()

        def done(segment: Segment) -> None:
            if feed is not None:
                feed(segment)
            cursor = f"{segment.index + 1}:{segment.discontinuity}"
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._remember, room, layer or TOP, cursor)

        return done

    def _remember(self, room: str, layer: str, cursor: str) -> None:
        async def write() -> None:
            with contextlib.suppress(RedisError):
                key = keys.room(room, "hls")
                await self.rooms.redis.hset(key, layer, cursor)

        self._spawn(write())

    def feed(self, room: str, directory: Path, layer: str = "") -> HlsFeed | None:
        """With ``--s3-hls``: a layer's recording (segments and playlist; the top one's
        also the multivariant playlist) to the bucket."""
        if self.uploader is None:
            return None
        key = self.media.room_playlist(room, LayerNames(layer).playlist)
        return HlsFeed(self.uploader, directory, key, layer)

    async def finalize_if_ended(self, room: str, directory: Path) -> None:
        """The room's playlist gets ``#EXT-X-ENDLIST`` once the room has ended (until
        then the host may publish again and players keep reloading it)."""
        with contextlib.suppress(RedisError, OSError):
            meta = await self.rooms.get(room)
            if meta is not None and meta.status is not RoomStatus.ENDED:
                return
            for names in _renditions(directory):
                ended = await asyncio.to_thread(finalize, directory, names)
                if ended and self.uploader is not None:
                    plain = directory / names.plain_playlist
                    key = self.uploader.store.key(self.media.room_playlist(room, names.playlist))
                    self.uploader.submit(plain, key=key, keep=True)

    def room_killed(self, kill: Kill) -> None:
        """A room's end (the nodes' control channel): see the module doc."""
        room = kill.room
        if not kill.ended or room is None or self._recording_here(room):
            return
        directory = self.media.latest_stream(room)
        if directory is not None:
            self._spawn(self.finalize_if_ended(room, directory))


def _renditions(directory: Path) -> list[LayerNames]:
    """Every layer with a playlist in a recording directory (the top one first)."""
    found = [PLAYLIST_RE.match(p.name) for p in directory.glob("*index.m3u8")]
    return sorted((LayerNames(m.group(1) or "") for m in found if m), key=lambda n: n.layer)
