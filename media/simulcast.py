"""Simulcast in SDP (RFC 8853) with RTP stream ids (RFC 8851, RFC 8852): pure, no I/O.

A WHIP publisher that sends simulcast offers, in its video section::

    a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
    a=extmap:5 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
    a=rid:h send
    a=rid:m send
    a=rid:l send
    a=simulcast:send h;m;l

and no ``a=ssrc`` lines for those streams: each RTP packet names its layer by
the rtp-stream-id header extension, and RTX packets by repaired-rtp-stream-id
(RFC 8852 §3), until the SSRCs are known. ``offered_layers`` reads that (1 to
``MAX_LAYERS`` layers; alternatives ``a,b`` keep their first choice, a paused
``~x`` is received like the others). ``answer_simulcast`` writes the mirror
image into our answer: ``a=rid:<id> recv`` per layer and ``a=simulcast:recv``
with the same list (RFC 8853 §5.3); the two extmap lines come from aiortc once
``media.ridemux`` has negotiated them. aiortc (1.16) knows none of these
attributes, so they are read and written here as text.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from media.peers import NegotiationError

URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 4
"""Layers a publisher may send (OBS 30+ sends 1 to 4)."""
_RID = re.compile(r"[A-Za-z0-9_-]{1,16}")
"""RFC 8851 §10 rid-id; at most 16 characters, what a one-byte header extension carries."""


@dataclass(frozen=True, slots=True)
class Simulcast:
    """What a video section offers: its rids in the offer's order, and their extension ids."""

    rids: tuple[str, ...]
    rid_ext: int
    repaired_ext: int | None


def _video_section(sdp: str) -> tuple[int, int, list[str]] | None:
    """(first line index, end index, lines) of the first video m-section."""
    lines = sdp.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")] + [len(lines)]
    for start, end in itertools.pairwise(starts):
        if lines[start].startswith("m=video "):
            return start, end, lines
    return None


def offered_layers(sdp: str) -> Simulcast | None:
    """The simulcast layers the offer's video section sends (None: a single stream).

    Raises ``NegotiationError`` naming the fault when the section says
    simulcast but cannot be received: a bad or unknown rid, more than
    ``MAX_LAYERS``, a rid that does not send, no rtp-stream-id extension.
    """
    section = _video_section(sdp)
    if section is None:
        return None
    start, end, lines = section
    rids: dict[str, str] = {}
    listed: list[str] | None = None
    exts: dict[str, int] = {}
    for line in lines[start:end]:
        if line.startswith("a=rid:"):
            fields = line[6:].split()
            if len(fields) < 2 or not _RID.fullmatch(fields[0]):
                raise NegotiationError(f"unreadable a=rid line: {line[:80]!r}")
            rids[fields[0]] = fields[1]
        elif line.startswith("a=simulcast:"):
            if listed is not None:
                raise NegotiationError("more than one a=simulcast line in the video section")
            listed = _send_list(line[12:])
        elif line.startswith("a=extmap:"):
            head, _, rest = line[9:].partition(" ")
            uri = rest.split()[0] if rest.split() else ""
            ext_id = head.split("/")[0]
            if ext_id.isdigit():
                exts[uri] = int(ext_id)
    if listed is None:
        return None
    if not 1 <= len(listed) <= MAX_LAYERS:
        raise NegotiationError(f"simulcast sends 1 to {MAX_LAYERS} layers, offer has {len(listed)}")
    if len(set(listed)) != len(listed):
        raise NegotiationError("a rid is listed twice in a=simulcast")
    for rid in listed:
        if rids.get(rid) != "send":
            raise NegotiationError(f"simulcast layer {rid!r} has no a=rid:{rid} send line")
    rid_ext = exts.get(URI_RID)
    if rid_ext is None or not 1 <= rid_ext <= 14:
        raise NegotiationError("simulcast needs the rtp-stream-id header extension (id 1-14)")
    repaired = exts.get(URI_REPAIRED_RID)
    return Simulcast(tuple(listed), rid_ext, repaired if repaired and 1 <= repaired <= 14 else None)


def _send_list(value: str) -> list[str]:
    """The rids of ``send <list>`` (RFC 8853 §5.1): first alternative of each, ``~`` dropped."""
    parts = value.split()
    if len(parts) < 2 or parts[0] != "send":
        raise NegotiationError("a=simulcast must be 'send <rid list>' in a publisher's offer")
    rids = []
    for stream in parts[1].split(";"):
        first = stream.split(",")[0].lstrip("~")
        if not _RID.fullmatch(first):
            raise NegotiationError(f"unreadable rid {first[:20]!r} in a=simulcast")
        rids.append(first)
    return rids


def answer_simulcast(answer_sdp: str, rids: tuple[str, ...]) -> str:
    """``answer_sdp`` with ``a=rid:<id> recv`` lines and ``a=simulcast:recv`` in its video
    section (placed after its ``a=mid`` line), the layers in the offer's order."""
    section = _video_section(answer_sdp)
    if section is None:
        raise NegotiationError("the answer has no video section for the simulcast layers")
    start, end, lines = section
    at = next((i + 1 for i in range(start, end) if lines[i].startswith("a=mid:")), end)
    added = [f"a=rid:{rid} recv" for rid in rids] + [f"a=simulcast:recv {';'.join(rids)}"]
    newline = "\r\n" if "\r\n" in answer_sdp else "\n"
    return newline.join(lines[:at] + added + lines[at:]) + newline
