"""Process-wide counters of the media plane that tests and /metrics read.

``codec_ops`` is the forwarding path's promise made checkable: it counts every
decode or encode that happens on a relayed flow (a publisher's receiver that
handed the relay a decoded frame, a viewer's sender that was given a decoded
frame to encode). Selective forwarding never decodes or encodes, so it must
stay 0; tests assert it does.
"""

from __future__ import annotations

import threading
from collections import Counter


class OpCounter:
    """A thread-safe counter with a per-reason breakdown.

    ``inc`` may be called from any thread (aiortc runs codecs in worker
    threads); reads are snapshots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_reason: Counter[str] = Counter()

    def inc(self, reason: str, n: int = 1) -> None:
        """Count ``n`` operations of kind ``reason`` (e.g. ``"encode:video/H264"``)."""
        with self._lock:
            self._by_reason[reason] += n

    @property
    def value(self) -> int:
        """Total operations counted since start (or the last ``reset``)."""
        with self._lock:
            return sum(self._by_reason.values())

    def by_reason(self) -> dict[str, int]:
        """A copy of the per-reason counts."""
        with self._lock:
            return dict(self._by_reason)

    def reset(self) -> None:
        """Forget all counts (tests call this before a scenario)."""
        with self._lock:
            self._by_reason.clear()


codec_ops = OpCounter()
"""Decodes and encodes on relayed flows; 0 when forwarding works as designed."""

lean_forwarded = OpCounter()
"""Frames the lean forwarder sent (``"video"``, ``"audio"``, once per frame for all its
viewers) and packets it retransmitted on NACK (``"resent"``)."""

simulcast = OpCounter()
"""Simulcast events: ``"layers_seen"`` (a publisher's rid whose first packet arrived),
``"switch_down"``/``"switch_up"`` (a viewer moved layer on a keyframe), ``"gop_served"``
(a viewer's PLI answered from its layer's cached GOP), ``"padding"`` (a packet
sent to a viewer to probe its link for the next layer up)."""

transport_cc = OpCounter()
"""Transport-wide congestion control to publishers: ``"feedback"`` (RTCP packets sent),
``"negotiated"`` (publisher connections that asked for it)."""
