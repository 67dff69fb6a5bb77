"""Where recordings, replays and clips live on a node's disk, and the disk budget.

Layout under the media root (``--media-dir``, default ``<data-dir>/media``)::

    rec/<room>/<stream>/init.mp4, segNNNNNN.m4s, index.m3u8, full.mp4
    replay/<room>.mp4
    clips/<room>/<clip>.mp4, <clip>.jpg

``<stream>`` is ``<unix seconds, 10 digits>-<6 hex>`` (sorts by start time),
``<clip>`` 12 hex digits. Every name that reaches a path is checked against
these shapes first (and the result must stay under the root), so no request
can name a file outside the media directory.

``prune`` keeps the whole tree under a byte budget: ended recordings go first
(oldest first; their replay is already built), then replays and clips, oldest
first. Live recordings are never pruned: this node's (the caller says which),
and any recording written in the last ``ACTIVE_S`` seconds, which on a media
directory shared by several nodes is another node's live one (a live
recording writes a segment every few seconds).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from livecore.tokens import valid_id

STREAM_RE = re.compile(r"^\d{10}-[0-9a-f]{6}$")
CLIP_RE = re.compile(r"^[0-9a-f]{12}$")
SEGMENT_RE = re.compile(r"^(init\.mp4|seg\d{6}\.m4s)$")
#: A recording with a file written this recently (seconds) is live somewhere.
ACTIVE_S = 60.0


def new_clip_id() -> str:
    return secrets.token_hex(6)


@dataclass(slots=True)
class Pruned:
    """What ``prune`` removed, so the caller can forget it (store entries, state)."""

    recordings: list[Path] = field(default_factory=list)
    replays: list[str] = field(default_factory=list)
    clips: list[tuple[str, str]] = field(default_factory=list)
    freed: int = 0
    over_budget: bool = False


class MediaDir:
    """Path rules of one media root (pure path arithmetic plus mkdir)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def rec_root(self) -> Path:
        return self.root / "rec"

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise ValueError("path leaves the media directory")
        return resolved

    def new_stream_dir(self, room: str, now: float) -> Path:
        if not valid_id(room):
            raise ValueError("bad room id")
        path = self.rec_root / room / f"{int(now):010d}-{secrets.token_hex(3)}"
        path.mkdir(parents=True, exist_ok=False)
        return path

    def stream_dir(self, room: str, stream: str) -> Path | None:
        """The directory of one recording, if the names are well formed and it exists."""
        if not valid_id(room) or not STREAM_RE.match(stream):
            return None
        path = self._inside(self.rec_root / room / stream)
        return path if path.is_dir() else None

    def latest_stream(self, room: str) -> Path | None:
        """The room's newest recording directory."""
        if not valid_id(room):
            return None
        base = self.rec_root / room
        try:
            names = sorted(n for n in os.listdir(base) if STREAM_RE.match(n))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return self._inside(base / names[-1]) if names else None

    def segment_file(self, room: str, stream: str, name: str) -> Path | None:
        directory = self.stream_dir(room, stream)
        if directory is None or not SEGMENT_RE.match(name):
            return None
        path = self._inside(directory / name)
        return path if path.is_file() else None

    def replay_path(self, room: str) -> Path:
        if not valid_id(room):
            raise ValueError("bad room id")
        return self._inside(self.root / "replay" / f"{room}.mp4")

    def clip_path(self, room: str, clip: str, ext: str) -> Path:
        if not valid_id(room) or not CLIP_RE.match(clip) or ext not in ("mp4", "jpg"):
            raise ValueError("bad clip name")
        return self._inside(self.root / "clips" / room / f"{clip}.{ext}")


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path``."""
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(base, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _written_since(directory: Path, since: float) -> bool:
    """Whether a file directly in ``directory`` was modified at or after ``since``."""
    try:
        with os.scandir(directory) as entries:
            return any(e.is_file() and e.stat().st_mtime >= since for e in entries)
    except FileNotFoundError:
        return False


def prune(media: MediaDir, budget: int, live: set[Path], *, now: float | None = None) -> Pruned:
    """Remove the oldest recordings (then replays and clips) until under ``budget`` bytes.

    ``live``: this node's live recordings; one written within ``ACTIVE_S`` of
    ``now`` (default: the wall clock) is kept too (another node's, on a shared
    directory)."""
    result = Pruned()
    used = tree_size(media.root)
    if used <= budget:
        return result
    live = {p.resolve() for p in live}
    active_since = (time.time() if now is None else now) - ACTIVE_S
    ended: list[Path] = []
    if media.rec_root.is_dir():
        for room_dir in media.rec_root.iterdir():
            if room_dir.is_dir():
                ended += [d for d in room_dir.iterdir() if d.is_dir() and d.resolve() not in live
                          and not _written_since(d, active_since)]  # fmt: skip
    for directory in sorted(ended, key=_mtime):
        if used <= budget:
            return result
        size = tree_size(directory)
        shutil.rmtree(directory, ignore_errors=True)
        used -= size
        result.freed += size
        result.recordings.append(directory)
    others: list[tuple[float, Path]] = []
    replay_dir = media.root / "replay"
    if replay_dir.is_dir():
        others += [(_mtime(p), p) for p in replay_dir.glob("*.mp4")]
    clips_dir = media.root / "clips"
    if clips_dir.is_dir():
        others += [(_mtime(p), p) for p in clips_dir.glob("*/*.mp4")]
    for _, path in sorted(others):
        if used <= budget:
            return result
        victims = [path]
        if path.parent.parent == clips_dir:
            victims.append(path.with_suffix(".jpg"))
            result.clips.append((path.parent.name, path.stem))
        else:
            result.replays.append(path.stem)
        for victim in victims:
            try:
                size = victim.stat().st_size
                victim.unlink()
            except FileNotFoundError:
                continue
            used -= size
            result.freed += size
    result.over_budget = used > budget
    return result
