"""The room's engagement on a shared timeline: buckets, the recording lease, controls (pure).

Every node counts the audience it serves; the node that records the room's
stream reads what all of them counted (``livecore.store.engagement``). They
meet on a timeline every node computes alike from its own clock:

- a **bucket** is one second of the detector's time: ``floor(unix × scale)``,
  ``scale`` being ``--highlight-time-scale`` (1 in production; a benchmark
  replaying an audience X times faster gives X buckets per wall second, so a
  bucket stays one second of the replayed trace). Every node of a room must run
  with the same scale;
- the **lease** says that a room's stream is being recorded, by which node,
  since when (unix seconds of the first keyframe) and at what scale; the
  recording node refreshes it every few seconds, so it vanishes with a node
  that died;
- a **control** is what the host does that the detector needs in stream order
  (a mark, a product pin or unpin, a 讲解 tap or its end), stamped with the
  unix time of the node that handled it.

Counts are of people, not taps: a bucket holds the distinct users who did
each kind of thing in it (HyperLogLog in Valkey, so a user connected to two
nodes counts once, and a bucket's memory is bounded whatever the audience).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class ControlKind(StrEnum):
    """What a control entry is (the ``k`` field)."""

    MARK = "mark"
    PIN = "pin"
    """A product card pinned (``product`` = its name) or removed (``product`` = None)."""
    EXPLAIN = "explain"
    """The host taps 讲解 on ``product``: an explanation segment begins."""
    EXPLAIN_END = "explain_end"
    """The host ended the explanation (or unpinned, or the stream stopped)."""
    COSTREAM = "costream"
    """A KOC went on air on another node (``product`` = the KOC's user id): the node
    recording the room draws that stream into the recording (not a detector input)."""


def bucket(unix_s: float, scale: float) -> int:
    """The bucket holding ``unix_s`` (see the module doc)."""
    return math.floor(unix_s * scale)


@dataclass(frozen=True, slots=True)
class Lease:
    """A room's stream is being recorded by ``node`` since ``started_at`` (unix s)."""

    node: str
    started_at: float
    scale: float
    stream: str

    def stream_time(self, unix_s: float) -> float:
        """Stream seconds at ``unix_s`` (never negative)."""
        return max(0.0, unix_s - self.started_at)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Lease | None:
        """The lease, or None when ``raw`` is not one (a foreign or damaged value)."""
        try:
            data = json.loads(raw)
            lease = cls(
                node=str(data["node"]),
                started_at=float(data["started_at"]),
                scale=float(data["scale"]),
                stream=str(data["stream"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        ok = math.isfinite(lease.started_at) and math.isfinite(lease.scale) and lease.scale > 0
        return lease if ok else None


@dataclass(frozen=True, slots=True)
class Control:
    """One host action for the detector, at ``at`` (unix seconds of the handling node)."""

    kind: ControlKind
    at: float
    product: str | None = None

    def to_json(self) -> str:
        out: dict[str, Any] = {"k": self.kind.value, "at": self.at}
        if self.product is not None:
            out["product"] = self.product
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Control | None:
        try:
            data = json.loads(raw)
            product = data.get("product")
            control = cls(ControlKind(data["k"]), float(data["at"]),
                          None if product is None else str(product))  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return control if math.isfinite(control.at) else None
