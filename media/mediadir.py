"""Where recordings, replays and clips live on a node's disk, and the disk budget.

Layout under the media root (``--media-dir``, default ``<data-dir>/media``)::

    rec/<room>/<stream>/init.mp4, segNNNNNN.m4s, segNNNNNN.P.m4s, index.m3u8, master.m3u8
    replay/<room>.mp4
    clips/<room>/<clip>.mp4, <clip>.jpg

``<stream>`` is ``<unix seconds, 10 digits>-<6 hex>`` (sorts by start time),
``<clip>`` 12 hex digits. Every name that reaches a path is checked against
these shapes first (and the result must stay under the root), so no request
can name a file outside the media directory.

``prune`` keeps the whole tree under a byte budget, live recordings counted:
ended recordings go first (oldest first; their replay is already built), then
the segments this node's live recordings keep only for their replay, then
replays and clips, then this node's live windows beyond what clips reach back
(see ``prune``). Another node's recording is never touched while it is live:
on a media directory shared by several nodes, a recording written in the last
``ACTIVE_S`` seconds is live somewhere (a live recording writes a segment
every few seconds) and a node only trims the live recordings it writes.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from livecore.tokens import valid_id
from media.hlsmaster import FILE_RE, MASTER_NAME, PLAYLIST_RE

STREAM_RE = re.compile(r"^\d{10}-[0-9a-f]{6}$")
CLIP_RE = re.compile(r"^[0-9a-f]{12}$")
#: A recording's init, segment and part files (every layer): ``media.hlsmaster``.
SEGMENT_RE = FILE_RE
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
    trimmed: list[Path] = field(default_factory=list)
    """Live recordings whose window was cut back to what clips need."""
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
        path = self.segment_path(room, stream, name)
        return path if path is not None and path.is_file() else None

    def segment_path(self, room: str, stream: str, name: str) -> Path | None:
        """Where a segment of a recording is (or was) written, if the names are well
        formed; whether it is on this disk or not (its object key, elsewhere)."""
        if not valid_id(room) or not STREAM_RE.match(stream) or not SEGMENT_RE.match(name):
            return None
        return self._inside(self.rec_root / room / stream / name)

    def room_playlist(self, room: str, name: str = "index.m3u8") -> Path:
        """``rec/<room>/index.m3u8`` (a lower rendition's ``<layer>_index.m3u8``, or
        ``master.m3u8``): never a local file; the key of the room's newest playlist in
        object storage (URIs relative to ``/hls/<room>/``)."""
        if not valid_id(room) or not (name == MASTER_NAME or PLAYLIST_RE.match(name)):
            raise ValueError("bad room id or playlist")
        return self._inside(self.rec_root / room / name)

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


class LiveFiles(Protocol):
    """A recording this node is writing (``media.recorder.Recording`` is one)."""

    @property
    def dir(self) -> Path: ...

    def drop_archived(self) -> int: ...

    def trim(self, keep_s: float) -> int: ...


def _ended_recordings(media: MediaDir, keep: set[Path], active_since: float) -> list[Path]:
    """Recording directories not in ``keep`` and not written since ``active_since``."""
    ended: list[Path] = []
    if media.rec_root.is_dir():
        for room_dir in media.rec_root.iterdir():
            if room_dir.is_dir():
                ended += [d for d in room_dir.iterdir() if d.is_dir() and d.resolve() not in keep
                          and not _written_since(d, active_since)]  # fmt: skip
    return sorted(ended, key=_mtime)


def _finished(media: MediaDir) -> list[Path]:
    """Replays and clip videos, oldest first."""
    found: list[tuple[float, Path]] = []
    replay_dir = media.root / "replay"
    if replay_dir.is_dir():
        found += [(_mtime(p), p) for p in replay_dir.glob("*.mp4")]
    clips_dir = media.root / "clips"
    if clips_dir.is_dir():
        found += [(_mtime(p), p) for p in clips_dir.glob("*/*.mp4")]
    return [p for _, p in sorted(found)]


def prune(
    media: MediaDir,
    budget: int,
    live: Sequence[LiveFiles],
    *,
    keep: Iterable[Path] = (),
    clip_reach_s: float = 180.0,
    keep_finished: bool = False,
    now: float | None = None,
) -> Pruned:
    """Free the oldest bytes until the media directory is under ``budget`` bytes.

    In this order, each oldest first:

    1. ended recordings (their replay is built): not ``live``, not in ``keep``
       (a replay being built from it), not written within ``ACTIVE_S`` of
       ``now`` (another node's live one, on a shared directory);
    2. this node's live recordings' archived segments (kept for the replay,
       which then starts later), oldest stream first;
    3. replays and clips (with their thumbnails), unless ``keep_finished``
       (object storage is on: a local one is still to be uploaded);
    4. this node's live windows beyond ``clip_reach_s`` seconds (what a clip
       cut reaches back; the HLS playlist shrinks with them).
    """
    result = Pruned()
    used = tree_size(media.root)
    if used <= budget:
        return result
    lives = sorted(live, key=lambda r: r.dir.name)  # names sort by start time
    protected = {p.resolve() for p in (*keep, *(r.dir for r in lives))}
    active_since = (time.time() if now is None else now) - ACTIVE_S
    for directory in _ended_recordings(media, protected, active_since):
        if used <= budget:
            return result
        size = tree_size(directory)
        shutil.rmtree(directory, ignore_errors=True)
        used -= size
        result.freed += size
        result.recordings.append(directory)
    for rec in lives:
        if used <= budget:
            return result
        freed = rec.drop_archived()
        used -= freed
        result.freed += freed
    for path in [] if keep_finished else _finished(media):
        if used <= budget:
            return result
        freed = _drop_finished(media, path, result)
        used -= freed
        result.freed += freed
    for rec in lives:
        if used <= budget:
            return result
        freed = rec.trim(clip_reach_s)
        used -= freed
        result.freed += freed
        if freed:
            result.trimmed.append(rec.dir)
    result.over_budget = used > budget
    return result


def _drop_finished(media: MediaDir, path: Path, result: Pruned) -> int:
    victims = [path]
    if path.parent.parent == media.root / "clips":
        victims.append(path.with_suffix(".jpg"))
        result.clips.append((path.parent.name, path.stem))
    else:
        result.replays.append(path.stem)
    freed = 0
    for victim in victims:
        try:
            size = victim.stat().st_size
            victim.unlink()
        except FileNotFoundError:
            continue
        freed += size
    return freed
