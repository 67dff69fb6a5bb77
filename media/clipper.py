"""Cutting clips and building replays from recorded fMP4, by remux only (worker thread).

Everything here is blocking and runs on the media worker, never on the event
loop. No video is decoded or encoded to cut: packets are copied from the
recording into a new MP4 (``movflags=faststart``: the index first, so a phone
starts playing before the download ends). The one decode is the thumbnail's:
the clip's first keyframe, decoded once and written as a JPEG still.

- ``cut_clip``: the segments overlapping ``[start, end)`` (the first one
  starts on the keyframe at or before ``start``: segments are GOPs), their
  packets up to ``end``, timestamps shifted to start at 0.
- ``build_replay``: the stream's files (``init.mp4`` + every segment on disk,
  read as one fragmented MP4 by ``ChainedFiles``; after a new init segment, the
  next group appended) into one faststart MP4.
- ``extend_replay``: a replay so far followed by the next stream of the same
  live (a host who republished: a reloaded page, a new phone), one after the
  other with no gap, into one faststart MP4.
"""

from __future__ import annotations

import bisect
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from media.recfiles import stream_groups
from media.segments import Segment

THUMB_WIDTH = 360


@dataclass(frozen=True, slots=True)
class CutResult:
    """What was written: the clip's duration and where it starts in the stream."""

    duration: float
    stream_start: float
    video_packets: int
    first_is_keyframe: bool


class NothingToCut(ValueError):
    """The recording has no segment in the asked range (too old, or not yet written)."""


def pick_segments(segments: Sequence[Segment], start: float, end: float) -> list[Segment]:
    """Segments overlapping ``[start, end)`` that one init segment describes: of the
    init groups in that range (a new SPS: a resolution change, a simulcast host's
    recording moving to a better layer, a co-stream starting) the one that covers most
    of it, from its first segment there (or the keyframe segment before it, when that
    one starts on a part without a keyframe)."""
    overlapping = [s for s in segments if s.end > start and s.start < end and s.duration > 0]
    if not overlapping:
        raise NothingToCut(f"no recorded segment covers {start:.1f}-{end:.1f} s")
    covered: dict[str, float] = {}
    for s in overlapping:
        covered[s.init] = covered.get(s.init, 0.0) + min(s.end, end) - max(s.start, start)
    init = max(covered, key=lambda name: covered[name])  # the first of equals
    chosen = [s for s in overlapping if s.init == init]
    earlier = [s for s in segments if s.index < chosen[0].index and s.init == init]
    while not chosen[0].independent and earlier:
        chosen.insert(0, earlier.pop())
    return chosen


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _remux(source: Any, dst: Path, end_s: float | None) -> CutResult:
    """Copy ``source``'s packets (up to ``end_s`` seconds from its first video
    keyframe) into ``dst``, timestamps from 0, faststart."""
    tmp = _tmp(dst)
    with av.open(source, format="mp4") as inp:
        video = inp.streams.video[0] if inp.streams.video else None
        if video is None:
            raise NothingToCut("the recording has no video")
        audio = inp.streams.audio[0] if inp.streams.audio else None
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            ov = out.add_stream_from_template(video)
            oa = out.add_stream_from_template(audio) if audio is not None else None
            origin: Fraction | None = None
            first_key = False
            count = 0
            last_video = Fraction(0)
            step = Fraction(1, 30)
            streams = [video] + ([audio] if audio is not None else [])
            for packet in inp.demux(*streams):
                if packet.dts is None or packet.pts is None or packet.time_base is None:
                    continue
                t = packet.pts * packet.time_base
                is_video = packet.stream is video
                if origin is None:
                    if not is_video:
                        continue  # audio before the first picture
                    origin = t
                    first_key = bool(packet.is_keyframe)
                rel = t - origin
                if rel < 0:
                    continue
                if end_s is not None and rel >= end_s:
                    continue  # demux order is not strictly by time: keep reading
                shift = round(origin / packet.time_base)
                packet.pts -= shift
                packet.dts -= shift
                if is_video:
                    packet.stream = ov
                    count += 1
                    if rel > last_video:
                        step = min(rel - last_video, Fraction(1, 5))
                        last_video = rel
                elif oa is not None:
                    packet.stream = oa
                out.mux(packet)
    os.replace(tmp, dst)
    duration = float(last_video + step) if count else 0.0
    return CutResult(duration, float(origin or 0), count, first_key)


def cut_clip(
    directory: Path, segments: Sequence[Segment], start: float, end: float, dst: Path
) -> CutResult:
    """Write the clip ``[start, end)`` of a recording in ``directory`` to ``dst``.

    The clip starts at the keyframe opening the segment that holds ``start``
    (up to one GOP earlier) and ends before ``end``. Raises ``NothingToCut``.
    """
    chosen = pick_segments(segments, start, end)
    buf = io.BytesIO()
    buf.write((directory / chosen[0].init).read_bytes())
    for seg in chosen:
        try:
            buf.write((directory / seg.name).read_bytes())
        except FileNotFoundError:
            raise NothingToCut(f"segment {seg.name} left the window") from None
    buf.seek(0)
    first = chosen[0].start
    result = _remux(buf, dst, end - first)
    return CutResult(result.duration, first, result.video_packets, result.first_is_keyframe)


class ChainedFiles(io.RawIOBase):
    """Several files read as one (seekable): a recording's init and segments."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._paths = list(paths)
        self._starts: list[int] = []
        total = 0
        for path in self._paths:
            self._starts.append(total)
            total += path.stat().st_size
        self._size = total
        self._pos = 0
        self._open: tuple[int, Any] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        i = bisect.bisect_right(self._starts, self._pos) - 1
        if self._open is None or self._open[0] != i:
            self.close_file()
            self._open = (i, self._paths[i].open("rb"))
        fh = self._open[1]
        fh.seek(self._pos - self._starts[i])
        n = int(fh.readinto(view))
        self._pos += n
        return n

    def close_file(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def close(self) -> None:
        self.close_file()
        super().close()


def _recorded(directory: Path) -> list[list[Path]]:
    """The recording's files, one fragmented MP4 per init segment (``stream_groups``)."""
    groups = [g for g in stream_groups(directory) if len(g) >= 2]
    if not groups:
        raise NothingToCut(f"no recorded segment in {directory.name}")
    return groups


def build_replay(directory: Path, dst: Path) -> CutResult:
    """The recording in ``directory`` (every init and segment on disk) as one faststart
    MP4 at ``dst``. Raises ``NothingToCut`` when nothing was recorded."""
    first, *more = _recorded(directory)
    with ChainedFiles(first) as chain:
        result = _remux(chain, dst, None)
    if not more:
        return result
    return _append(dst, more, dst)


def extend_replay(replay: Path, directory: Path, dst: Path) -> CutResult:
    """``replay`` (a built replay) then the recording in ``directory`` (the next stream)
    as one faststart MP4 at ``dst`` (which may be ``replay``: written aside, then replaced).

    Packets are copied; each part's timestamps are shifted to follow the end of the
    part before. Audio of the second part is dropped when the first had none (one
    MP4 has one set of tracks)."""
    return _append(replay, _recorded(directory), dst)


def _append(replay: Path, groups: list[list[Path]], dst: Path) -> CutResult:
    """``replay`` then each group of recorded files (an init and its segments)."""
    tmp = _tmp(dst)
    with av.open(str(replay)) as first:
        if not first.streams.video:
            raise NothingToCut("a part of the replay has no video")
        v0 = first.streams.video[0]
        a0 = first.streams.audio[0] if first.streams.audio else None
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            ov = out.add_stream_from_template(v0)
            oa = out.add_stream_from_template(a0) if a0 is not None else None
            state = _Concat(out, ov, oa)
            state.copy(first)
            for group in groups:
                with ChainedFiles(group) as chain, av.open(chain, format="mp4") as more:
                    if not more.streams.video:
                        raise NothingToCut("a part of the replay has no video")
                    state.offset = state.end
                    state.copy(more)
    os.replace(tmp, dst)
    return CutResult(float(state.end), 0.0, state.count, True)


class _Concat:
    """Copies the packets of one input after another into ``ov``/``oa``."""

    def __init__(self, out: Any, ov: Any, oa: Any) -> None:
        self.out, self.ov, self.oa = out, ov, oa
        self.offset = Fraction(0)
        self.end = Fraction(0)
        self.count = 0
        self.last_dts: dict[str, Fraction] = {}

    def copy(self, inp: Any) -> None:
        video = inp.streams.video[0]
        audio = inp.streams.audio[0] if inp.streams.audio and self.oa is not None else None
        streams = [video] + ([audio] if audio is not None else [])
        origin: Fraction | None = None
        step = Fraction(1, 30)
        for packet in inp.demux(*streams):
            if packet.dts is None or packet.pts is None or packet.time_base is None:
                continue
            is_video = packet.stream is video
            t = packet.pts * packet.time_base
            if origin is None:
                if not is_video:
                    continue  # audio before the first picture
                origin = t
            rel = t - origin
            if rel < 0:
                continue
            shift = round((origin - self.offset) / packet.time_base)
            packet.pts -= shift
            packet.dts -= shift
            kind = "v" if is_video else "a"
            dts = packet.dts * packet.time_base
            if kind in self.last_dts and dts <= self.last_dts[kind]:
                continue  # the seam: never a timestamp going back
            self.last_dts[kind] = dts
            packet.stream = self.ov if is_video else self.oa
            if is_video:
                self.count += 1
                start = self.offset + rel
                if start + step > self.end:
                    self.end = start + step
            out_end = dts + (packet.duration or 0) * packet.time_base
            if not is_video and out_end > self.end:
                self.end = out_end
            self.out.mux(packet)


def thumbnail(mp4: Path, dst: Path, width: int = THUMB_WIDTH) -> None:
    """A JPEG of ``mp4``'s first keyframe (one frame decoded, scaled, written as a still)."""
    with av.open(str(mp4)) as inp:
        stream = inp.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        frame = next(inp.decode(stream))
    height = max(2, round(frame.height * width / frame.width / 2) * 2)
    still = frame.reformat(width=width, height=height, format="yuvj420p")
    enc: Any = av.CodecContext.create("mjpeg", "w")
    enc.width, enc.height = width, height
    enc.pix_fmt = "yuvj420p"
    enc.time_base = Fraction(1, 1)
    data = b"".join(bytes(p) for p in enc.encode(still)) + b"".join(
        bytes(p) for p in enc.encode(None)
    )
    tmp = _tmp(dst)
    tmp.write_bytes(data)
    os.replace(tmp, dst)
