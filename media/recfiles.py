"""The files of one recording on disk: names, listing, atomic writes (no muxer here).

``stream_groups`` lists a layer's init segments with the segments each one
describes (``inits.txt``, written by ``media.segments.SegmentWriter`` when a
new init segment starts): each group is one fragmented MP4, what the replay
and clips are remuxed from. ``finalize`` ends a finished recording's playlists
when its room ends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from media.container import BoxSplitter
from media.hlsmaster import LayerNames
from media.hlsplaylist import parse, render

TOP = LayerNames()
INIT_NAME = TOP.init(0)
PLAYLIST_NAME = TOP.playlist


def segment_name(index: int) -> str:
    return TOP.segment(index)


def segment_files(directory: Path, names: LayerNames = TOP) -> list[Path]:
    """The segment files of a layer on disk, oldest first (names sort by number)."""
    return sorted(directory.glob(names.segment_glob))


def stream_groups(directory: Path, names: LayerNames = TOP) -> list[list[Path]]:
    """``[init, segments...]`` per init segment of a layer, oldest first: each group
    is one fragmented MP4 (what the replay is remuxed from); [] without an init."""
    firsts = [(0, directory / names.init(0))]
    try:
        for line in (directory / names.inits).read_text().splitlines():
            name, _, msn = line.partition(" ")
            firsts.append((int(msn), directory / name))
    except (FileNotFoundError, ValueError):
        pass
    groups: list[list[Path]] = []
    segs = segment_files(directory, names)
    for i, (first, init) in enumerate(firsts):
        until = firsts[i + 1][0] if i + 1 < len(firsts) else None
        mine = [p for p in segs if int(p.name[-10:-4]) >= first
                and (until is None or int(p.name[-10:-4]) < until)]  # fmt: skip
        if init.is_file() and (mine or i == 0):
            groups.append([init, *mine])
    return groups


def stream_files(directory: Path) -> list[Path]:
    """The top layer's first init and its segments: one fragmented MP4 ([] without)."""
    groups = stream_groups(directory)
    return groups[0] if groups else []


def unlink_size(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all. The temporary name is the writing thread's
    own: a simulcast host's layers each rewrite the shared ``master.m3u8``."""
    tmp = path.with_name(f"{path.name}.{threading.get_native_id()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Sink:
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


def finalize(directory: Path, names: LayerNames | None = None) -> bool:
    """The room ended: a finished recording's playlists get ``#EXT-X-ENDLIST``
    (idempotent); False when there is no playlist or it already had it."""
    names = names or LayerNames()
    path = directory / names.playlist
    try:
        pl = parse(path.read_text())
    except (OSError, ValueError, KeyError):
        return False
    if pl.ended:
        return False
    text = render(replace(pl, ended=True, hint="", first_msn=-1), low_latency=False).encode()
    write_atomic(path, text)
    write_atomic(directory / names.plain_playlist, text)
    return True
