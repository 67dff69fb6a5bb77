"""Cutting one fragmented MP4 byte stream into the files of a recording.

A ``SegmentWriter`` is handed the muxer's output (``sink()`` is the
file-like object PyAV writes into), splits it into top-level boxes and
writes, in its directory:

- ``init.mp4`` (``ftyp`` + ``moov``) and ``segNNNNNN.m4s`` (``moof`` + ``mdat``,
  one per fragment, i.e. per GOP);
- ``index.m3u8``: the HLS playlist over the rolling window (``window_s``) of
  finished segments, replaced atomically after each segment, with
  ``#EXT-X-ENDLIST`` after ``close()``.

A segment that leaves the window leaves the playlist; its file stays on disk
("archived") when ``archive`` is on, because the replay is built from init +
every segment when the stream ends (``stream_files``): the fragments
concatenate into one valid file, so no second full-length copy is written
beside them. Under disk pressure the budget (``media.mediadir.prune``) calls
``drop_archived()`` (the replay then starts later) and ``trim(keep_s)`` (the
window shrinks to what clips need), both safe from any thread.

A segment's duration is known when the next one begins: ``on_segment(seg)``
is called then (and for the last one at ``close()``). Every method runs on
the recording's worker thread except ``segments()`` and ``recorded_until``,
which take a lock and are safe from any thread.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from media.container import BoxSplitter, fragment_start

INIT_NAME = "init.mp4"
PLAYLIST_NAME = "index.m3u8"
SEGMENT_GLOB = "seg[0-9][0-9][0-9][0-9][0-9][0-9].m4s"


@dataclass(frozen=True, slots=True)
class Segment:
    """One fragment on disk: ``[start, start + duration)`` seconds of the stream."""

    index: int
    start: float
    duration: float
    name: str
    size: int

    @property
    def end(self) -> float:
        return self.start + self.duration


class SegmentCounters(Protocol):
    """Where the writer counts what it wrote (``media.recorder.RecorderStats``)."""

    segments: int
    bytes_written: int


def segment_name(index: int) -> str:
    return f"seg{index:06d}.m4s"


def segment_files(directory: Path) -> list[Path]:
    """The segment files of a recording on disk, oldest first (names sort by index)."""
    return sorted(directory.glob(SEGMENT_GLOB))


def stream_files(directory: Path) -> list[Path]:
    """``init.mp4`` then every segment on disk: together, one fragmented MP4 of the
    stream (what the replay is remuxed from); empty without an init segment."""
    init = directory / INIT_NAME
    return [init, *segment_files(directory)] if init.is_file() else []


def _unlink_size(path: Path) -> int:
    """Delete ``path``; the bytes freed (0 when it was already gone)."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def playlist(segments: list[Segment], *, ended: bool, prefix: str = "") -> str:
    """An HLS media playlist (RFC 8216, version 7: fMP4 with ``EXT-X-MAP``)."""
    target = max((s.duration for s in segments), default=2.0)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{max(1, round(target + 0.499))}",
        f"#EXT-X-MEDIA-SEQUENCE:{segments[0].index if segments else 0}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{prefix}{INIT_NAME}"',
    ]
    for s in segments:
        lines += [f"#EXTINF:{s.duration:.3f},", f"{prefix}{s.name}"]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _Sink:
    """File-like object PyAV writes the fragmented MP4 into; hands on whole boxes."""

    def __init__(self, on_box: Callable[[bytes, bytes], None]) -> None:
        self._split = BoxSplitter()
        self._on_box = on_box
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._pos += len(data)
        for kind, box in self._split.feed(bytes(data)):
            self._on_box(kind, box)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass


class SegmentWriter:
    """The files of one recording in ``directory`` (see the module doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        window_s: float,
        counters: SegmentCounters,
        on_segment: Callable[[Segment], None] | None = None,
        archive: bool = True,
    ) -> None:
        self.dir = directory
        self._window_s = window_s
        self._archive = archive
        self._counters = counters
        self._on_segment = on_segment
        self._lock = threading.Lock()
        self._segments: deque[Segment] = deque()
        self._init: bytes | None = None
        self._moof: bytes | None = None
        self._index = 0
        self._first_kept = 0
        """Index of the oldest segment not dropped by ``drop_archived`` or ``trim``."""

    # -- any thread ----------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """The segments on disk now, oldest first (a snapshot, safe from any thread)."""
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
        return sum(_unlink_size(self.dir / segment_name(i)) for i in gone)

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
                self._first_kept = max(self._first_kept, self._segments[0].index)
        return freed + sum(_unlink_size(self.dir / seg.name) for seg in gone)

    # -- worker thread -------------------------------------------------------------

    def begin(self) -> _Sink:
        """The file-like object the muxer is to write into."""
        return _Sink(self._box)

    def _box(self, kind: bytes, box: bytes) -> None:
        """A top-level box of the fragmented output: init, or half of a fragment."""
        if kind == b"ftyp":
            self._init = box
        elif kind == b"moov":
            self._init = (self._init or b"") + box
            write_atomic(self.dir / INIT_NAME, self._init)
        elif kind == b"moof":
            self._moof = box
        elif kind == b"mdat" and self._moof is not None:
            moof, self._moof = self._moof, None
            self._fragment(moof, moof + box)
        # mfra (written on close) is an optional index: left out.

    def _fragment(self, moof: bytes, data: bytes) -> None:
        start = (fragment_start(moof, 1) or 0) / 90000
        name = segment_name(self._index)
        write_atomic(self.dir / name, data)
        done = None
        with self._lock:
            if self._segments and self._segments[-1].duration <= 0:
                prev = self._segments[-1]
                done = Segment(prev.index, prev.start, start - prev.start, prev.name, prev.size)
                self._segments[-1] = done
            self._segments.append(Segment(self._index, start, 0.0, name, len(data)))
        self._index += 1
        self._counters.segments += 1
        self._counters.bytes_written += len(data)
        # A segment's duration is known when the next one begins: publish it now.
        if done is not None:
            self._published(done)

    def _published(self, seg: Segment) -> None:
        self._prune()
        self._write_playlist(ended=False)
        if self._on_segment is not None:
            self._on_segment(seg)

    def _prune(self) -> None:
        """Segments that left the rolling window leave the playlist (and the disk,
        unless archived for the replay)."""
        with self._lock:
            if not self._segments:
                return
            horizon = self._segments[-1].start - self._window_s
            gone = []
            while len(self._segments) > 2 and self._segments[0].end < horizon:
                gone.append(self._segments.popleft())
            if not self._archive and self._segments:
                self._first_kept = self._segments[0].index
        if not self._archive:
            for seg in gone:
                _unlink_size(self.dir / seg.name)

    def _finished_segments(self) -> list[Segment]:
        with self._lock:
            return [s for s in self._segments if s.duration > 0]

    def _write_playlist(self, *, ended: bool) -> None:
        # URIs carry the stream's directory: the playlist is served as
        # /hls/<room>/index.m3u8 for the room's newest stream, segments under it.
        text = playlist(self._finished_segments(), ended=ended, prefix=f"{self.dir.name}/")
        write_atomic(self.dir / PLAYLIST_NAME, text.encode())

    def close(self, last_video_pts: int | None) -> None:
        """After the muxer flushed its last fragment: end the last segment and the files.

        ``last_video_pts`` (90 kHz, the last video frame muxed) gives the open
        segment its duration; the playlist is written with ``#EXT-X-ENDLIST``
        and ``on_segment`` called for the last segment.
        """
        with self._lock:
            if self._segments and self._segments[-1].duration <= 0 and last_video_pts is not None:
                last = self._segments[-1]
                end = (last_video_pts + 3000) / 90000  # one frame past the last one (30 fps)
                self._segments[-1] = Segment(
                    last.index, last.start, max(0.001, end - last.start), last.name, last.size
                )
        if self._init is not None:
            self._write_playlist(ended=True)
            segs = self.segments()
            if segs and self._on_segment is not None:
                self._on_segment(segs[-1])
