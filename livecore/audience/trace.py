"""The audience trace format: what a room's audience did, compact and versioned.

A trace file (``*.lctrace``) is a gzip stream of msgpack objects:

1. a header map: ``format`` = ``"livecore-trace"``, ``version`` = 1,
   ``duration_s``, ``communities`` (names; events refer to them by index),
   ``labels`` (true highlight moments, see ``Label``), ``source``
   (``synthetic``, ``recorded`` or ``exported``) and free ``meta``;
2. then one array per event, in time order:
   ``[dt_ms, client, kind, community, value]`` where ``dt_ms`` is the time
   since the previous event (so most are 0..255 and pack into one byte),
   ``client`` an anonymised client number (0 is the host), ``kind`` a
   ``Kind``, ``community`` an index into ``communities`` or -1, and
   ``value`` the payload's shape: the comment's length, the likes' tap count,
   the vote's option, the group join's quantity, the product's price in cents.
   A recording whose operator opted in to keep comment text stores the text
   (a string) as the comment's ``value`` instead of its length.

Readers refuse another ``format``, a newer ``version`` and files over
``MAX_EVENTS`` events. docs/loadtests.md documents the format for people.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

FORMAT = "livecore-trace"
VERSION = 1
MAX_EVENTS = 5_000_000
"""Largest trace a reader accepts (about 40 MB of memory)."""
HOST = 0
"""The client number of the room's host."""


class Kind(IntEnum):
    """What one event of a trace is (the numbers are the file format: never reuse one)."""

    JOIN = 1
    LEAVE = 2
    COMMENT = 3
    LIKE = 4
    VOTE = 5
    GROUP_JOIN = 6
    GROUP_LEAVE = 7
    OFFICER_APPLY = 8
    RECONNECT = 9
    MEDIA_START = 10
    MEDIA_STOP = 11
    # The host's actions: the context the audience reacts to.
    PRODUCT_PIN = 20
    PRICE_DROP = 21
    POLL_OPEN = 22
    GROUPBUY_OPEN = 23

    @property
    def label(self) -> str:
        return self.name.lower()


AUDIENCE_KINDS = frozenset(k for k in Kind if k < Kind.PRODUCT_PIN)
HOST_KINDS = frozenset(k for k in Kind if k >= Kind.PRODUCT_PIN)


class Event(NamedTuple):
    """One event; ``t_ms`` is milliseconds from the start of the trace."""

    t_ms: int
    client: int
    kind: Kind
    community: int = -1
    value: int | str = 0


@dataclass(frozen=True)
class Label:
    """A true highlight moment: ``[start_s, end_s]`` with why it is one.

    ``start_s`` is when it happened on stream (the pin, the price drop);
    the audience's reaction follows ``lag_s`` later and lasts until ``end_s``.
    """

    start_s: float
    end_s: float
    reason: str
    lag_s: float = 0.0

    def as_map(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "end_s": self.end_s, "reason": self.reason,
                "lag_s": self.lag_s}  # fmt: skip


@dataclass
class Trace:
    """A whole trace in memory: header fields and events in time order."""

    events: list[Event]
    duration_s: float
    communities: list[str] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    source: str = "synthetic"
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self, until_s: float | None = None) -> dict[str, int]:
        """Events per kind name (those before ``until_s`` when given)."""
        out: dict[str, int] = {}
        limit = None if until_s is None else until_s * 1000
        for event in self.events:
            if limit is not None and event.t_ms >= limit:
                break
            name = event.kind.label
            out[name] = out.get(name, 0) + 1
        return out

    @property
    def clients(self) -> int:
        """Client numbers used (the highest plus one)."""
        return 1 + max((e.client for e in self.events), default=-1)


class TraceError(ValueError):
    """A file that is not a trace this reader understands."""


def header_map(trace: Trace) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "duration_s": trace.duration_s,
        "communities": list(trace.communities),
        "labels": [label.as_map() for label in trace.labels],
        "source": trace.source,
        "meta": trace.meta,
    }


def encode_events(events: Iterable[Event], previous_ms: int = 0) -> Iterator[bytes]:
    """The packed event records, each time delta-encoded from the one before."""
    pack = msgpack.Packer().pack
    for event in events:
        if event.t_ms < previous_ms:
            raise ValueError("trace events must be in time order")
        yield pack([event.t_ms - previous_ms, event.client, int(event.kind), event.community,
                    event.value])  # fmt: skip
        previous_ms = event.t_ms


def write_trace(path: Path, trace: Trace) -> Path:
    """Write ``trace`` to ``path`` (gzip level 9: traces are written once, read often)."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(msgpack.packb(header_map(trace)))
        for record in encode_events(trace.events):
            out.write(record)
    return path


def read_trace(path: Path, *, max_events: int = MAX_EVENTS) -> Trace:
    """Read a trace file; raises ``TraceError`` naming what is wrong."""
    try:
        with gzip.open(path, "rb") as stream:
            unpacker = msgpack.Unpacker(stream, raw=False, max_buffer_size=16 * 2**20)
            header = next(unpacker, None)
            trace = _from_header(header)
            t_ms = 0
            for record in unpacker:
                if len(trace.events) >= max_events:
                    raise TraceError(f"more than {max_events} events")
                dt, client, kind, community, value = record
                t_ms += int(dt)
                trace.events.append(Event(t_ms, int(client), Kind(kind), int(community), value))
    except (OSError, EOFError, ValueError, TypeError, msgpack.UnpackException) as exc:
        if isinstance(exc, TraceError):
            raise
        raise TraceError(f"{path}: not a readable livecore trace ({exc})") from exc
    return trace


def _from_header(header: Any) -> Trace:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TraceError("no livecore-trace header")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise TraceError(f"trace version {version!r}; this reader knows up to {VERSION}")
    labels = [Label(float(x["start_s"]), float(x["end_s"]), str(x["reason"]),
                    float(x.get("lag_s", 0.0))) for x in header.get("labels", [])]  # fmt: skip
    return Trace(
        events=[],
        duration_s=float(header["duration_s"]),
        communities=[str(c) for c in header.get("communities", [])],
        labels=labels,
        source=str(header.get("source", "")),
        meta=dict(header.get("meta") or {}),
    )
