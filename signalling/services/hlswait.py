"""LL-HLS delivery directives: blocking playlist reload, delta updates, hinted parts.

``Directives.from_query`` checks a playlist request's ``_HLS_msn``,
``_HLS_part`` and ``_HLS_skip`` (draft-pantos-hls-rfc8216bis §6.2.5):
integers in range, ``_HLS_part`` only with ``_HLS_msn``, ``_HLS_skip`` only
``YES`` (``v2`` is for date ranges, which these playlists never carry);
anything else is ``hls_bad_directive`` (400).

``answer_playlist`` reads a playlist file and, for a blocking request, holds
until it has the asked segment or part (``media.hlsplaylist.check_request``):
at most three target durations (bis §6.2.5.2), then ``media_unavailable``
(503); a request too far ahead is ``hls_too_far`` (400) at once.
``with_rendition_reports`` adds where the other renditions are (their last
segment and part) to a live playlist as it is served.
``wait_for_file`` holds a request for a part named by ``EXT-X-PRELOAD-HINT``
that is not written yet, the same way (then 404 as for any missing file).

The wait is woken by ``PlaylistWaits``: a recording on this node calls its
``notifier`` after every playlist write (from the recording's thread); a
playlist written by another node on a shared media directory is re-read
every ``POLL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import QueryParams

from livecore.errors import ErrorCode, LivecoreError
from media.hlsmaster import PLAYLIST_RE
from media.hlsplaylist import Wait, check_request, parse, render, rendition_report

log = logging.getLogger("livecore.hls")
POLL_S = 0.1
MAX_MSN = 10**9
#: Upper bound of a hold, whatever the playlist's target duration says.
MAX_HOLD_S = 9.0


@dataclass(frozen=True, slots=True)
class Directives:
    msn: int | None = None
    part: int | None = None
    skip: bool = False

    @property
    def blocking(self) -> bool:
        return self.msn is not None

    @property
    def any(self) -> bool:
        return self.blocking or self.skip

    @classmethod
    def from_query(cls, query: QueryParams) -> Directives:
        msn = _number(query, "_HLS_msn")
        part = _number(query, "_HLS_part")
        if part is not None and msn is None:
            raise LivecoreError(ErrorCode.HLS_BAD_DIRECTIVE, "_HLS_part needs _HLS_msn")
        skip = query.get("_HLS_skip")
        if skip not in (None, "YES"):
            raise LivecoreError(ErrorCode.HLS_BAD_DIRECTIVE, "_HLS_skip: only YES")
        return cls(msn, part, skip == "YES")


def _number(query: QueryParams, name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 10 or int(value) > MAX_MSN:
        raise LivecoreError(ErrorCode.HLS_BAD_DIRECTIVE, f"{name}: a number 0..{MAX_MSN}")
    return int(value)


class PlaylistWaits:
    """Wakes requests held on a room's playlist (one event per room recorded on this
    node with waiters)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self.local: set[str] = set()
        """Rooms whose newest playlist this node writes (woken, never polled)."""

    def notifier(self, loop: asyncio.AbstractEventLoop, room: str) -> Callable[[], None]:
        """A callable for the recording's thread: the room's playlist changed."""

        def changed() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self.wake, room)

        return changed

    def wake(self, room: str) -> None:
        event = self._events.pop(room, None)
        if event is not None:
            event.set()

    async def changed(self, room: str, within: float) -> None:
        """Until the room's playlist changes (or ``within`` seconds pass), or ``POLL_S``
        when another node writes it (no event kept for it: only rooms recorded here
        have one, and each write or the recording's end removes it)."""
        if room not in self.local:
            await asyncio.sleep(max(0.0, min(within, POLL_S)))
            return
        event = self._events.setdefault(room, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(0.0, within))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _exists(path: Path) -> bool:
    return path.is_file()


async def answer_playlist(
    path: Path, directives: Directives, waits: PlaylistWaits, room: str
) -> str | None:
    """The playlist's text for these directives (None: no such file)."""
    text = _read(path)
    if text is None or not directives.any:
        return text
    try:
        pl = parse(text)
    except (ValueError, KeyError):
        return text  # not ours to judge (a multivariant playlist has no directives)
    if directives.blocking:
        assert directives.msn is not None
        deadline = time.monotonic() + min(MAX_HOLD_S, 3 * pl.target)
        while (state := check_request(pl, directives.msn, directives.part)) is Wait.HOLD:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LivecoreError(ErrorCode.MEDIA_UNAVAILABLE,
                                    "the asked segment or part did not appear in time")  # fmt: skip
            await waits.changed(room, left)
            text = _read(path) or text
            pl = parse(text)
        if state is Wait.TOO_FAR:
            last = pl.entries[-1] if pl.entries else None
            log.info("room %s: %s asked msn %s part %s; the playlist ends at msn %s with %s "
                     "parts (%s)", room, path.name, directives.msn, directives.part,
                     last.msn if last else None, len(last.parts) if last else 0,
                     "complete" if last is not None and last.complete else "open")  # fmt: skip
            raise LivecoreError(ErrorCode.HLS_TOO_FAR,
                                "_HLS_msn/_HLS_part: too far ahead of the playlist")  # fmt: skip
    return render(pl, skip=True) if directives.skip else text


def with_rendition_reports(path: Path, text: str) -> str:
    """A live low-latency media playlist with an ``EXT-X-RENDITION-REPORT`` for every
    other rendition recorded beside it (bis §4.4.5.4; Apple's rules want one per
    rendition of the multivariant playlist); any other text as it is."""
    if "#EXT-X-PART-INF:" not in text or "#EXT-X-ENDLIST" in text:
        return text
    reports = []
    for sibling in sorted(path.parent.glob("*index.m3u8")):
        if sibling.name == path.name or not PLAYLIST_RE.match(sibling.name):
            continue
        other = _read(sibling)
        try:
            report = rendition_report(sibling.name, parse(other)) if other else None
        except (ValueError, KeyError):
            continue  # half written by another node's writer: left out this time
        if report is not None:
            reports.append(report + "\n")
    return text + "".join(reports)


async def wait_for_file(path: Path, waits: PlaylistWaits, room: str, hold_s: float) -> bool:
    """Whether ``path`` exists, waiting up to ``hold_s`` for it (a hinted part); False at
    once when its playlist stops hinting (the stream stopped: no part will come)."""
    deadline = time.monotonic() + hold_s
    playlist = path.parent / f"{path.name.partition('seg')[0]}index.m3u8"
    while not _exists(path):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await waits.changed(room, left)
        text = _read(playlist)
        if text is not None and "#EXT-X-PRELOAD-HINT" not in text and not _exists(path):
            return False
    return True
