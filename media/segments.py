"""Cutting one layer's fragmented MP4 byte stream into the files of a recording.

A ``SegmentWriter`` is handed the muxer's output (``begin()`` returns the
file-like object PyAV writes into), splits it into top-level boxes and
writes, in its directory (names: ``media.hlsmaster.LayerNames``):

- ``init.mp4`` (``ftyp`` + ``moov``); a new SPS/PPS or picture size starts a
  new muxer and with it ``init-1.mp4``, ... (``inits.txt`` says from which
  segment on each applies; the playlist's ``EXT-X-MAP`` changes there, after
  an ``EXT-X-DISCONTINUITY``);
- one part file per muxer fragment, ``segNNNNNN.P.m4s`` (``moof`` + ``mdat``,
  at most ``part_s``: the muxer's ``frag_duration``; a keyframe always starts
  one), the LL-HLS ``EXT-X-PART``s; kept for the last few segments only;
- ``segNNNNNN.m4s``, the parts of a segment end to end. A segment closes
  before a keyframe part once it holds ``segment_s`` (half a part's
  tolerance), or before any part that would take it past the fixed target
  duration (a publisher whose GOP is longer: that segment then starts on a
  non-keyframe part, and the playlist drops ``EXT-X-INDEPENDENT-SEGMENTS``);
- ``index.m3u8`` (low-latency, rewritten after every part) and
  ``plain.m3u8`` (segments only, for object storage), over the rolling
  window ``window_s``; after ``close()`` both without parts (the stream
  paused: the host may publish again), ``#EXT-X-ENDLIST`` once ``finalize``
  is called (the room ended);
- ``layer.json`` and ``master.m3u8`` (``media.hlsmaster``).

Segment numbers are media sequence numbers. A ``Continuation`` (the room's
previous stream's playlist) makes a re-published stream continue them: its
segments stay listed before an ``EXT-X-DISCONTINUITY`` until they leave the
window.

A segment that leaves the window leaves the playlist; its file stays on disk
("archived") when ``archive`` is on, because the replay is built from the init
and segment files when the stream ends (``stream_groups``). Under disk
pressure ``drop_archived()`` and ``trim(keep_s)`` free space, from any thread.

``on_segment(seg)`` is called when a segment is complete, ``on_change()``
after every playlist write (a part, a segment, the end): both on the
recording's worker thread, like every method except ``segments()``,
``recorded_until``, ``drop_archived`` and ``trim`` (locked, any thread).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from media.container import fragment_info
from media.hlsmaster import (
    MASTER_NAME,
    LayerInfo,
    LayerNames,
    info_json,
    master_playlist,
    read_infos,
)
from media.hlsplaylist import (
    PARTS_FOR,
    Entry,
    MediaPlaylist,
    Part,
    drop_leading,
    render,
    target_duration,
)
from media.recfiles import INIT_NAME, Sink, unlink_size, write_atomic

VIDEO_HZ = 90000


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment on disk: ``[start, start + duration)`` seconds of the stream."""

    index: int
    """Its media sequence number (and file number)."""
    start: float
    duration: float
    name: str
    size: int
    init: str = INIT_NAME
    independent: bool = True
    discontinuity: int = 0
    """Its discontinuity sequence number (RFC 8216 §6.2.2): a stream continued on
    another node starts its own at one past the last segment's."""

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class VideoFormat:
    width: int
    height: int
    codecs: str


@dataclass(frozen=True, slots=True)
class Continuation:
    """Where a room's previous stream left its playlist (a host re-publishing)."""

    next_msn: int = 0
    discontinuity_seq: int = 0
    entries: tuple[Entry, ...] = ()

    @classmethod
    def elsewhere(cls, next_msn: int, discontinuity: int) -> Continuation:
        """After a stream recorded on another node, known only by its last segment's
        number and discontinuity number: the numbers go on, none of its segments are
        listed, and the new stream's first segment is a timeline break of its own
        (its discontinuity sequence one past that segment's, RFC 8216 §6.2.2)."""
        return cls(next_msn, discontinuity + 1)

    @classmethod
    def after(cls, previous: MediaPlaylist) -> Continuation:
        done = tuple(e for e in previous.entries if e.complete)
        # Numbers follow the last complete segment: an open one (a stream cut off) is
        # not listed again, and a playlist's numbers are consecutive by position.
        last = done[-1].msn if done else previous.media_sequence - 1
        return cls(last + 1, previous.discontinuity_seq, done)


class SegmentCounters(Protocol):
    """Where the writer counts what it wrote (``media.recorder.RecorderStats``)."""

    segments: int
    bytes_written: int


@dataclass(slots=True)
class _Open:
    """The segment being written: its parts so far."""

    msn: int
    start: float
    pdt: float
    init: str
    discontinuity: bool
    independent: bool
    parts: list[Part] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    overlong: bool = False
    """A part outgrew PART-TARGET (frames stalled inside it): the segment's parts are
    not listed, the segment is, whole, once complete."""

    @property
    def listed_parts(self) -> tuple[Part, ...]:
        return () if self.overlong else tuple(self.parts)

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.parts)


class SegmentWriter:
    """The files of one layer of a recording in ``directory`` (see the module doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        window_s: float,
        counters: SegmentCounters,
        on_segment: Callable[[Segment], None] | None = None,
        on_change: Callable[[], None] | None = None,
        archive: bool = True,
        segment_s: float = 2.0,
        part_s: float = 0.5,
        layer: str = "",
        continuation: Continuation | None = None,
    ) -> None:
        self.dir = directory
        self.names = LayerNames(layer)
        self.segment_s, self.part_s = segment_s, part_s
        self.target = target_duration(segment_s, part_s)
        self.epoch = time.time()
        """Wall-clock time (unix seconds) of stream time 0: ``EXT-X-PROGRAM-DATE-TIME``
        (the recorder sets the first keyframe's arrival)."""
        self._window_s = window_s
        self._archive = archive
        self._counters = counters
        self._on_segment = on_segment
        self._on_change = on_change
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        cont = continuation or Continuation()
        self._list = MediaPlaylist(self.target, part_s, cont.entries, cont.discontinuity_seq)
        self._index = cont.next_msn
        self._first_kept = cont.next_msn
        """Number of the oldest own segment not dropped by ``drop_archived`` or ``trim``."""
        self._break = bool(cont.entries)  # the next segment follows a discontinuity
        self._open: _Open | None = None
        self._moof: bytes | None = None
        self._init: bytes | None = None
        self._inits = -1
        self._offset: float | None = None
        self._first_s = 0.0
        self._format: VideoFormat | None = None
        self._bytes = 0
        self._frames = 0
        self._span = (-1.0, 0.0)
        """Stream seconds of the first part's start and the last part's end."""
        self._peak = 0.0
        """Highest segment bit rate so far (bits/s)."""
        self._closed = False

    # -- any thread ----------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """This stream's segments on disk now, oldest first (a snapshot)."""
        with self._lock:
            return list(self._segments)

    @property
    def recorded_until(self) -> float:
        """Stream seconds covered by finished segments."""
        with self._lock:
            return self._segments[-1].end if self._segments else 0.0

    def drop_archived(self) -> int:
        """Delete the segments that left the window (kept for the replay); bytes freed."""
        with self._lock:
            first = self._segments[0].index if self._segments else self._index
            gone, self._first_kept = range(self._first_kept, first), max(first, self._first_kept)
        return sum(unlink_size(self.dir / self.names.segment(i)) for i in gone)

    def trim(self, keep_s: float) -> int:
        """Shrink the window to the last ``keep_s`` seconds (two segments at least):
        the older segments leave the playlist and the disk; bytes freed."""
        freed = self.drop_archived()
        with self._lock:
            gone = []
            if self._segments:
                horizon = self._segments[-1].start - keep_s
                while len(self._segments) > 2 and self._segments[0].end < horizon:
                    gone.append(self._segments.popleft())
            if self._segments:
                first = self._segments[0].index
                self._first_kept = max(self._first_kept, first)
                old = sum(1 for e in self._list.entries if e.msn < first)
                self._list = drop_leading(self._list, old)
        return freed + sum(unlink_size(self.dir / seg.name) for seg in gone)

    # -- worker thread -------------------------------------------------------------

    def begin(self, *, first_s: float = 0.0, video: VideoFormat | None = None) -> Sink:
        """The file-like object a (new) muxer is to write into; ``first_s``: the stream
        time of its first video frame. A muxer after the first means a new init
        segment: the open segment ends here and the next follows a discontinuity."""
        if self._open is not None:
            self._close_open()
        self._inits += 1
        self._offset, self._first_s, self._format = None, first_s, video
        self._break = self._break or self._inits > 0
        return Sink(self._box)

    def _box(self, kind: bytes, box: bytes) -> None:
        if kind == b"ftyp":
            self._init = box
        elif kind == b"moov":
            name = self.names.init(self._inits)
            write_atomic(self.dir / name, (self._init or b"") + box)
            if self._inits:
                with open(self.dir / self.names.inits, "a") as f:
                    f.write(f"{name} {self._index}\n")
        elif kind == b"moof":
            self._moof = box
        elif kind == b"mdat" and self._moof is not None:
            moof, self._moof = self._moof, None
            self._part(moof, moof + box)
        # mfra (written on close) is an optional index: left out.

    def _part(self, moof: bytes, data: bytes) -> None:
        info = fragment_info(moof, 1)
        if info is None or info.samples == 0:
            return
        if self._offset is None:  # a muxer's timestamps start at 0
            self._offset = self._first_s - info.start / VIDEO_HZ
        start = info.start / VIDEO_HZ + self._offset
        duration = info.duration / VIDEO_HZ
        key = info.sync_first
        seg = self._open
        if seg is not None and seg.parts:
            held = seg.duration
            if (key and held >= self.segment_s - self.part_s / 2) or held + duration > self.target:
                self._close_open()
        if self._open is None:
            self._open = _Open(self._index, start, self.epoch + start, self.names.init(self._inits),
                               self._break, key)  # fmt: skip
            self._break = False
        seg = self._open
        name = self.names.part(seg.msn, len(seg.parts))
        write_atomic(self.dir / name, data)
        seg.parts.append(Part(duration, name, key))
        if duration > self.part_s + 0.0005:  # RFC 8216bis §4.4.4.9: never past the target
            seg.overlong = True
        seg.chunks.append(data)
        self._bytes += len(data)
        self._frames += info.samples
        self._span = (start if self._span[0] < 0 else self._span[0], start + duration)
        if len(seg.parts) == 1 and self._counters.segments == 0:
            self._write_info()
        self._write_playlists(plain=False)

    def _close_open(self) -> None:
        """The open segment is complete: its file, its entry, ``on_segment``."""
        seg, self._open = self._open, None
        if seg is None or not seg.parts:
            return
        name = self.names.segment(seg.msn)
        data = b"".join(seg.chunks)
        write_atomic(self.dir / name, data)
        duration = seg.duration
        entry = Entry(seg.msn, name, seg.init, seg.pdt, duration, True, seg.discontinuity,
                      seg.independent, seg.listed_parts)  # fmt: skip
        with self._lock:
            self._list = replace(self._list, entries=(*self._list.entries, entry))
            breaks = sum(1 for e in self._list.entries if e.discontinuity)
            done = Segment(seg.msn, seg.start, duration, name, len(data), seg.init,
                           seg.independent, self._list.discontinuity_seq + breaks)  # fmt: skip
            self._segments.append(done)
        self._index = seg.msn + 1
        self._counters.segments += 1
        self._counters.bytes_written += len(data)
        if duration >= self.segment_s / 2:  # a stream's short last segment is no peak
            self._peak = max(self._peak, len(data) * 8 / duration)
        self._prune()
        for old in range(seg.msn - PARTS_FOR - 2, seg.msn - PARTS_FOR):
            for i in range(64):
                if not unlink_size(self.dir / self.names.part(old, i)):
                    break
        self._write_info()
        self._write_playlists(plain=True)
        if self._on_segment is not None:
            self._on_segment(done)

    def _prune(self) -> None:
        """Segments that left the rolling window leave the playlist (and the disk,
        unless archived for the replay); carried ones leave by the playlist's length."""
        with self._lock:
            gone = []
            if self._segments:
                horizon = self._segments[-1].start - self._window_s
                while len(self._segments) > 2 and self._segments[0].end < horizon:
                    gone.append(self._segments.popleft())
                if not self._archive and self._segments:
                    self._first_kept = self._segments[0].index
            entries = self._list.entries
            total, count = sum(e.duration for e in entries), 0
            while len(entries) - count > 2 and total - entries[count].duration >= self._window_s:
                total -= entries[count].duration
                count += 1
            if gone:  # every carried entry is older than this stream's segments
                count = max(count, sum(1 for e in entries if e.msn <= gone[-1].index))
            self._list = drop_leading(self._list, count)
        if not self._archive:
            for seg in gone:
                unlink_size(self.dir / seg.name)

    def _playlist(self, *, ended: bool) -> MediaPlaylist:
        with self._lock:
            pl = self._list
        entries = list(pl.entries)
        seg = self._open
        if seg is not None and seg.overlong:  # listed once complete, without parts
            hint = self.names.part(seg.msn + 1, 0)
        elif seg is not None and seg.parts:
            entries.append(Entry(seg.msn, "", seg.init, seg.pdt, seg.duration, False,
                                 seg.discontinuity, seg.independent, tuple(seg.parts)))  # fmt: skip
            hint = self.names.part(seg.msn, len(seg.parts))
        else:
            hint = self.names.part(self._index, 0)
        # URIs carry the stream's directory: the playlist is served as
        # /hls/<room>/index.m3u8 for the room's newest stream, its files under it.
        return replace(pl, entries=tuple(_prefixed(e, self.dir.name) for e in entries),
                       hint=f"{self.dir.name}/{hint}", ended=ended)  # fmt: skip

    def _write_playlists(self, *, plain: bool, ended: bool = False) -> None:
        pl = self._playlist(ended=ended)
        write_atomic(self.dir / self.names.playlist, render(pl).encode())
        if plain:
            write_atomic(self.dir / self.names.plain_playlist,
                         render(pl, low_latency=False).encode())  # fmt: skip
        if self._on_change is not None:
            self._on_change()

    def _write_info(self) -> None:
        fmt = self._format
        if fmt is None:
            return
        segs = self.segments()
        seconds = sum(s.duration for s in segs) or (self._open.duration if self._open else 0)
        average = (sum(s.size for s in segs) or self._bytes) * 8 / max(seconds, 0.001)
        first, end = self._span
        rate = min(120.0, self._frames / max(end - first, 0.001))
        info = LayerInfo(self.names.layer, fmt.width, fmt.height, fmt.codecs, round(rate, 3),
                         round(max(self._peak, average)), round(average))  # fmt: skip
        write_atomic(self.dir / self.names.info, info_json(info))
        write_atomic(self.dir / MASTER_NAME, master_playlist(read_infos(self.dir)).encode())

    def close(self) -> None:
        """After the muxer flushed its last fragment: the open segment is complete, the
        part files go, and the playlist is written without parts, preload hint or
        blocking reload, but without ``#EXT-X-ENDLIST`` either: the host may publish
        again within the room's end grace, and a player that saw the end list would
        stop (``finalize`` adds it when the room ends)."""
        self._close_open()
        self._closed = True
        if self._inits >= 0:
            text = render(self._playlist(ended=False), low_latency=False).encode()
            write_atomic(self.dir / self.names.playlist, text)
            write_atomic(self.dir / self.names.plain_playlist, text)
            if self._on_change is not None:
                self._on_change()
        for part in self.dir.glob(f"{self.names.prefix}seg{'[0-9]' * 6}.*.m4s"):
            unlink_size(part)  # the playlist lists no parts now


def _prefixed(entry: Entry, prefix: str) -> Entry:
    """An entry of this stream with its URIs under ``prefix/`` (carried ones have one)."""
    if "/" in entry.map_uri:
        return entry
    parts = tuple(replace(p, uri=f"{prefix}/{p.uri}") for p in entry.parts)
    uri = f"{prefix}/{entry.uri}" if entry.uri else ""
    return replace(entry, uri=uri, map_uri=f"{prefix}/{entry.map_uri}", parts=parts)
