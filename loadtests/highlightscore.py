"""Scoring highlights against a trace's labels, and the detector run offline on a trace.

A detection is a window ``(start_s, end_s, kind)`` in trace seconds. It
counts as true when it overlaps a labelled moment (``trace.Label``: from the
moment on stream to the end of the audience's reaction); a label counts as
found when some detection overlaps it. ``precision`` = true detections /
detections, ``recall`` = found labels / labels.

``offline`` feeds a trace's audience to the pure detector as the nodes do live
(per second, the people who commented, liked, voted, joined a group, arrived
= a join without ``since``, signed up as officers; reconnects are not
arrivals; a product pin starts a product segment), with the trace's clock. It is what
the live benchmark should find, less what the network and the node's clock
change; ``python -m loadtests highlights --offline`` scores it over many
generated sessions in seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from livecore.audience.trace import HOST, Kind, Label, Trace
from livecore.highlights import Detector, DetectorParams, Signal

SIGNALS: dict[Kind, Signal] = {
    Kind.COMMENT: Signal.COMMENT,
    Kind.LIKE: Signal.LIKE,
    Kind.VOTE: Signal.VOTE,
    Kind.GROUP_JOIN: Signal.JOIN,
    Kind.JOIN: Signal.ARRIVAL,
    Kind.OFFICER_APPLY: Signal.SIGNUP,
}
"""Trace event → the signal the hub counts for it (people, whatever the taps)."""


class Window(NamedTuple):
    start_s: float
    end_s: float
    kind: str


def overlaps(w: Window, label: Label) -> bool:
    return w.start_s < label.end_s and label.start_s < w.end_s


def score(windows: Sequence[Window], labels: Sequence[Label]) -> dict[str, Any]:
    """``labelled, detected, true, found, precision, recall`` (None when undefined)."""
    true = sum(any(overlaps(w, x) for x in labels) for w in windows)
    found = sum(any(overlaps(w, x) for w in windows) for x in labels)
    return {
        "labelled": len(labels),
        "detected": len(windows),
        "true": true,
        "found": found,
        "precision": round(true / len(windows), 3) if windows else None,
        "recall": round(found / len(labels), 3) if labels else None,
    }


def score_by_kind(windows: Sequence[Window], labels: Sequence[Label]) -> dict[str, Any]:
    """The overall score plus ``by_kind`` (detections per kind) and ``bursts`` (the
    audience-only detections, scored alone: what product pins do not give away)."""
    out = score(windows, labels)
    out["by_kind"] = dict(Counter(w.kind for w in windows))
    bursts = score([w for w in windows if w.kind == "burst"], labels)
    out["bursts"] = {k: bursts[k] for k in ("detected", "true", "found", "precision", "recall")}
    return out


def offline(trace: Trace, params: DetectorParams | None = None) -> list[Window]:
    """The detector's highlights on ``trace`` (see the module doc), in trace seconds.

    As the nodes count it live: per second and kind, the number of distinct
    people (one viewer's 50 taps a message, ten messages a second, are one)."""
    det = Detector(params)
    found = []
    pins = 0
    second = -1
    people: dict[Signal, set[int]] = {}

    def close() -> None:
        if second >= 0 and people:
            det.add_counts(second, {k.value: len(v) for k, v in people.items()})
        people.clear()

    for e in trace.events:
        t = e.t_ms / 1000
        if int(t) != second:
            close()
            second = int(t)
        found += det.advance(t)
        if e.client == HOST:
            if e.kind == Kind.PRODUCT_PIN:
                pins += 1
                det.product_pinned(product_name(pins), t)
            continue
        signal = SIGNALS.get(e.kind)
        if signal is not None:
            people.setdefault(signal, set()).add(e.client)
    close()
    found += det.end(trace.duration_s)
    return [Window(h.start, h.end, h.kind.value) for h in found]


def product_name(n: int) -> str:
    """The name the benchmark's host gives its ``n``-th pinned product (1-based)."""
    return f"商品 {n}"


def pooled(scores: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall over several traces (pooled counts, not a mean of ratios)."""
    rows = list(scores)
    total = {k: sum(r[k] for r in rows) for k in ("labelled", "detected", "true", "found")}
    b_det, b_true, b_found = (sum(r["bursts"][k] for r in rows) for k in ("detected", "true",
                                                                           "found"))  # fmt: skip
    return {
        "traces": len(rows),
        **total,
        "precision": round(total["true"] / total["detected"], 3) if total["detected"] else None,
        "recall": round(total["found"] / total["labelled"], 3) if total["labelled"] else None,
        "bursts": {
            "detected": b_det,
            "precision": round(b_true / b_det, 3) if b_det else None,
            "recall": round(b_found / total["labelled"], 3) if total["labelled"] else None,
        },
    }
