"""Low-latency HLS media playlists: the model, its text, and blocking-reload rules (pure).

No I/O and no clock: a ``MediaPlaylist`` in, text out (``render``), text in,
the model back (``parse``: the routes read what the recorder wrote, for
blocking reloads and delta updates, and tests check it strictly).

The rules applied, from RFC 8216 and draft-pantos-hls-rfc8216bis (LL-HLS):

- ``EXT-X-TARGETDURATION`` is fixed for the playlist's life (RFC 8216
  §6.2.1: it MUST NOT change); every segment's duration rounded to the
  nearest integer is at most it (§4.3.3.1). The writer chooses it up front.
- ``EXT-X-PART`` durations are at most ``EXT-X-PART-INF:PART-TARGET``
  (bis §4.4.4.9); parts that start with a keyframe say ``INDEPENDENT=YES``.
  Parts are listed for the last ``PARTS_FOR`` segments and the open one only
  (bis §6.2.2: parts older than a few target durations may be removed).
- ``EXT-X-SERVER-CONTROL``: ``CAN-BLOCK-RELOAD=YES``, ``PART-HOLD-BACK`` of
  three part targets (bis §4.4.3.8: at least twice; three recommended),
  ``CAN-SKIP-UNTIL`` of six target durations (the minimum, bis §4.4.3.8).
- ``EXT-X-DISCONTINUITY`` before a segment that does not continue the one
  before (a host re-publishing, a new init segment); when such a segment
  becomes the first in the playlist its tag leaves and
  ``EXT-X-DISCONTINUITY-SEQUENCE`` grows by one (RFC 8216 §4.3.3.3).
- Blocking reload (bis §6.2.5.2): ``_HLS_msn``/``_HLS_part`` name a segment
  or part; ``check_request`` says whether the playlist has it, or whether the
  request is too far ahead (``_HLS_msn`` beyond the last segment plus two, or
  a part beyond the open segment's by the advance part limit of three):
  answered 400 at once.
- Delta updates (bis §6.2.5.1): ``render(..., skip=True)`` replaces the
  segments older than ``CAN-SKIP-UNTIL`` before the end by ``EXT-X-SKIP``.
- Rendition reports (bis §4.4.5.4): ``rendition_report`` says where another
  rendition is, for a player about to switch to it (the routes add one per
  other rendition when they serve a live playlist: they change faster than any
  one file is written).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum

VERSION = 9
"""``EXT-X-SKIP`` needs version 9 (bis §7); fMP4 with ``EXT-X-MAP`` needs 6+."""
PARTS_FOR = 3
"""Complete segments (before the open one) whose parts are still listed."""
ADVANCE_PART_LIMIT = 3
"""How many parts past the open segment's last a blocking request may ask (bis §6.2.5.2)."""
TUNE_IN_TARGETS = 1.5
"""Target durations a player may ask ahead on top of that (hls.js's CDN tune-in goal is at
most 1.5 target durations of media the playlist seems late by)."""
SKIP_FACTOR = 6
HOLD_BACK_PARTS = 3


@dataclass(frozen=True, slots=True)
class Part:
    """One partial segment (an fMP4 fragment of its own file)."""

    duration: float
    uri: str
    independent: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One media segment; the last one of a live playlist may be open (parts only)."""

    msn: int
    uri: str
    map_uri: str
    pdt: float
    """Wall-clock time of its first frame (unix seconds): ``EXT-X-PROGRAM-DATE-TIME``."""
    duration: float = 0.0
    complete: bool = True
    discontinuity: bool = False
    independent: bool = True
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    target: int
    part_target: float
    entries: tuple[Entry, ...] = ()
    discontinuity_seq: int = 0
    hint: str = ""
    """URI of the next part (``EXT-X-PRELOAD-HINT``), "" when none (ended)."""
    ended: bool = False
    skipped: int = 0
    """Segments replaced by ``EXT-X-SKIP`` (a parsed delta update)."""
    first_msn: int = field(default=-1)

    @property
    def media_sequence(self) -> int:
        if self.first_msn >= 0:
            return self.first_msn
        return self.entries[0].msn if self.entries else 0

    @property
    def can_skip_until(self) -> float:
        return float(SKIP_FACTOR * self.target)

    @property
    def part_hold_back(self) -> float:
        return round(HOLD_BACK_PARTS * self.part_target, 3)


def target_duration(segment_s: float, part_s: float) -> int:
    """The fixed ``EXT-X-TARGETDURATION`` for a segment target and a part target:
    room for a keyframe that arrives one part after the segment target."""
    return max(1, math.ceil(segment_s + part_s - 1e-9))


def _pdt(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _part_line(part: Part) -> str:
    extra = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={part.duration:.3f},URI="{part.uri}"{extra}'


def _skip_count(pl: MediaPlaylist) -> int:
    """How many leading segments a delta update may leave out (complete ones whose
    start is more than ``CAN-SKIP-UNTIL`` before the playlist's end)."""
    end = sum(e.duration for e in pl.entries)
    elapsed, count = 0.0, 0
    for entry in pl.entries:
        if not entry.complete or end - elapsed <= pl.can_skip_until:
            break
        elapsed += entry.duration
        count += 1
    return count


def render(pl: MediaPlaylist, *, skip: bool = False, low_latency: bool = True) -> str:
    """The playlist's text; ``skip``: a delta update; ``low_latency`` off: no parts,
    no server control, the open segment left out (what object storage gets)."""
    live_ll = low_latency and not pl.ended
    entries = [e for e in pl.entries if e.complete or live_ll]
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{VERSION}", f"#EXT-X-TARGETDURATION:{pl.target}"]
    if live_ll:
        lines.append(
            f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={pl.can_skip_until:.1f},"
            f"PART-HOLD-BACK={pl.part_hold_back:.3f}"
        )
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={pl.part_target:.3f}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{pl.media_sequence}")
    if pl.discontinuity_seq:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{pl.discontinuity_seq}")
    if entries and all(e.independent for e in entries):
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
    skipped = _skip_count(pl) if skip and live_ll else 0
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    complete = [e for e in entries if e.complete]
    with_parts = {e.msn for e in complete[-PARTS_FOR:]} if live_ll else set()
    map_uri = ""
    for entry in entries[skipped:]:
        if entry.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if entry.map_uri != map_uri:
            map_uri = entry.map_uri
            lines.append(f'#EXT-X-MAP:URI="{map_uri}"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(entry.pdt)}")
        if entry.msn in with_parts or not entry.complete:
            lines += [_part_line(p) for p in entry.parts]
        if entry.complete:
            lines += [f"#EXTINF:{entry.duration:.3f},", entry.uri]
    if live_ll and pl.hint:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{pl.hint}"')
    if pl.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def rendition_report(uri: str, pl: MediaPlaylist) -> str | None:
    """The ``EXT-X-RENDITION-REPORT`` another rendition's playlist carries for ``pl``
    (served at ``uri``, relative), bis §4.4.5.4: ``LAST-MSN`` its last segment (the open
    one included), ``LAST-PART`` the index of that segment's last part when it has parts
    listed. None while it has no segment yet."""
    if not pl.entries:
        return None
    last = pl.entries[-1]
    line = f'#EXT-X-RENDITION-REPORT:URI="{uri}",LAST-MSN={last.msn}'
    return f"{line},LAST-PART={len(last.parts) - 1}" if last.parts else line


def drop_leading(pl: MediaPlaylist, count: int) -> MediaPlaylist:
    """``pl`` without its first ``count`` segments; a discontinuity that becomes the
    first segment's moves into ``EXT-X-DISCONTINUITY-SEQUENCE`` (RFC 8216 §6.2.1)."""
    if count <= 0:
        return pl
    gone, kept = pl.entries[:count], list(pl.entries[count:])
    seq = pl.discontinuity_seq + sum(1 for e in gone[1:] if e.discontinuity)
    if kept and kept[0].discontinuity:
        kept[0] = replace(kept[0], discontinuity=False)
        seq += 1
    return replace(pl, entries=tuple(kept), discontinuity_seq=seq, first_msn=-1)


# -- reading a playlist back ------------------------------------------------------------

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(value: str) -> dict[str, str]:
    """An attribute list (RFC 8216 §4.2) as a dict, quotes removed."""
    return {k: v.strip('"') for k, v in _ATTR.findall(value)}


def parse(text: str) -> MediaPlaylist:
    """A media playlist's text back into the model (what ``render`` writes; a
    delta update's ``EXT-X-SKIP`` is kept as ``skipped``). ``ValueError`` when it is
    not a media playlist."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise ValueError("not a playlist: no #EXTM3U")
    target, part_target, msn, disc, skipped = -1, 0.0, 0, 0, 0
    hint, ended = "", False
    entries: list[Entry] = []
    pending: dict[str, object] = {}
    parts: list[Part] = []
    map_uri = ""
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-TARGETDURATION":
            target = int(value)
        elif tag == "#EXT-X-PART-INF":
            part_target = float(attributes(value)["PART-TARGET"])
        elif tag == "#EXT-X-MEDIA-SEQUENCE":
            msn = int(value)
        elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
            disc = int(value)
        elif tag == "#EXT-X-SKIP":
            skipped = int(attributes(value)["SKIPPED-SEGMENTS"])
        elif tag == "#EXT-X-DISCONTINUITY":
            pending["discontinuity"] = True
        elif tag == "#EXT-X-MAP":
            map_uri = attributes(value)["URI"]
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            pending["pdt"] = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        elif tag == "#EXT-X-PART":
            a = attributes(value)
            parts.append(Part(float(a["DURATION"]), a["URI"], a.get("INDEPENDENT") == "YES"))
        elif tag == "#EXTINF":
            pending["duration"] = float(value.split(",")[0])
        elif tag == "#EXT-X-PRELOAD-HINT":
            hint = attributes(value)["URI"]
        elif tag == "#EXT-X-ENDLIST":
            ended = True
        elif not line.startswith("#"):
            entries.append(_entry(msn + skipped + len(entries), line, map_uri, pending, parts))
            pending, parts = {}, []
    if parts:  # the open segment
        entries.append(_entry(msn + skipped + len(entries), "", map_uri, pending, parts, False))
    if target < 0:
        raise ValueError("not a media playlist: no #EXT-X-TARGETDURATION")
    return MediaPlaylist(target, part_target, tuple(entries), disc, hint, ended, skipped, msn)


def _entry(
    msn: int, uri: str, map_uri: str, tags: dict[str, object], parts: list[Part],
    complete: bool = True,
) -> Entry:  # fmt: skip
    duration = tags.get("duration", 0.0)
    pdt = tags.get("pdt", 0.0)
    assert isinstance(duration, float) and isinstance(pdt, float)
    independent = parts[0].independent if parts else True
    return Entry(msn, uri, map_uri, pdt, duration, complete, bool(tags.get("discontinuity")),
                 independent, tuple(parts))  # fmt: skip


# -- blocking playlist reload (bis §6.2.5.2) ---------------------------------------------


class Wait(Enum):
    READY = "ready"
    """The playlist has what was asked (or it ended): answer now."""
    HOLD = "hold"
    """Not yet: hold the request until it appears (bounded)."""
    TOO_FAR = "too_far"
    """Beyond what the server will wait for: 400 at once."""


def check_request(pl: MediaPlaylist, msn: int, part: int | None) -> Wait:
    """Whether ``pl`` answers a blocking request for segment ``msn`` (part ``part``).

    More than two segments past the last complete one is too far (bis §6.2.5.2). A part
    is held while it lies within ``ADVANCE_PART_LIMIT`` parts of the next one to come,
    plus the 1.5 target durations a player's CDN tune-in may add: hls.js asks that much
    further ahead when a playlist reached it late (a cache's copy, a loaded link), and a
    400 for it costs the viewer a full reload."""
    if pl.ended or not pl.hint:  # ended, or paused (no writer): nothing to wait for
        return Wait.READY
    last = pl.entries[-1] if pl.entries else None
    last_complete = max((e.msn for e in pl.entries if e.complete), default=pl.media_sequence - 1)
    if msn > last_complete + 2:
        return Wait.TOO_FAR
    if part is None:
        return Wait.READY if msn <= last_complete else Wait.HOLD
    if msn <= last_complete:
        return Wait.READY
    # The next part to come: the open segment's next, or the first of the next segment.
    if last is not None and not last.complete:
        coming_msn, coming_part = last.msn, len(last.parts)
    else:
        coming_msn, coming_part = last_complete + 1, 0
    if msn == coming_msn and part < coming_part:
        return Wait.READY
    per_segment = math.ceil(pl.target / pl.part_target) if pl.part_target > 0 else 1
    ahead = (msn - coming_msn) * per_segment + part - coming_part
    tune_in = math.ceil(TUNE_IN_TARGETS * pl.target / pl.part_target) if pl.part_target > 0 else 0
    return Wait.TOO_FAR if ahead >= ADVANCE_PART_LIMIT + tune_in else Wait.HOLD
