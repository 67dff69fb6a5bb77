"""Added latency per frame: map each frame a viewer received back to the one sent.

Mapping a viewer's frames back to the publisher's (added latency)
-----------------------------------------------------------------
The server keeps the spacing of RTP timestamps but each viewer's stream gets
its own random origin (aiortc draws one per sender), so a viewer's timestamp
is ``pts + C_v (mod 2^32)`` with an unknown ``C_v`` per viewer; SRTCP sender
reports would give it, but their payload is encrypted and lean viewers hold
no keys. Instead the publisher writes the frame number into the spacing:
frame ``n`` gets ``pts(n) = n·S + c(n)`` (``S`` = 90000/fps), with ``c(n) = 0``
for even ``n`` and ``1 + (n // 2) mod K`` for odd ``n`` (``K`` = 250: at most
2.8 ms off the nominal instant). Two consecutive frames are ``S ± c`` apart,
so every adjacent pair a viewer receives tells the odd frame's ``n`` modulo
``2K`` (500 frames, 16.7 s at 30 fps); the candidate whose recorded send time
is the latest before the frame's arrival fixes ``C_v`` (the most common value
over all pairs is taken). Then every frame maps to exactly one ``n`` with
``pts(n) = ts - C_v``; a frame for which that does not hold is counted as a
mismatch (a correctness failure). Added latency = arrival − send time of ``n``,
where the publisher records the send time as it hands frame ``n`` to its
``RTCRtpSender`` (which packetises and sends it without yielding).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from loadtests.clip import CODE_SPAN, frame_pts
from loadtests.stats import percentile


@dataclass
class Mapped:
    latencies_ms: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    viewer_medians_ms: list[float] = field(default_factory=list)
    mismatches: int = 0
    unmapped_viewers: int = 0

    def by_second(self, t0: float, seconds: int) -> list[float | None]:
        """p50 added latency of the frames that arrived in each second of the window."""
        bins: list[list[float]] = [[] for _ in range(seconds)]
        for at, ms in zip(self.arrivals, self.latencies_ms, strict=True):
            i = int(at - t0)
            if 0 <= i < seconds:
                bins[i].append(ms)
        return [percentile(b, 0.5) for b in bins]


def map_frames(
    ts: list[int], at: list[float], sent_at: list[float], step: int, out: Mapped
) -> None:
    """Add the added latency of each of one viewer's frames to ``out`` (see the module doc)."""
    period = 2 * CODE_SPAN
    offsets: Counter[int] = Counter()
    for i in range(1, len(ts)):
        gap = (ts[i] - ts[i - 1]) & 0xFFFFFFFF
        if step < gap <= step + CODE_SPAN:
            j, residue = i, 2 * (gap - step - 1) + 1
        elif step - CODE_SPAN <= gap < step:
            j, residue = i - 1, 2 * (step - gap - 1) + 1
        else:
            continue  # frames skipped in between: no code
        # The latest frame n ≡ residue (mod 2K) sent before this one arrived.
        n = residue
        while n + period < len(sent_at) and sent_at[n + period] <= at[j]:
            n += period
        if n < len(sent_at) and sent_at[n] <= at[j]:
            offsets[(ts[j] - frame_pts(n, step)) & 0xFFFFFFFF] += 1
    if not offsets:
        out.unmapped_viewers += 1
        return
    offset = offsets.most_common(1)[0][0]
    mine = []
    for stamp, arrival in zip(ts, at, strict=True):
        pts = (stamp - offset) & 0xFFFFFFFF
        n = pts // step
        if n < len(sent_at) and frame_pts(n, step) == pts:
            mine.append(1000 * (arrival - sent_at[n]))
            out.arrivals.append(arrival)
        else:
            out.mismatches += 1
    out.latencies_ms += mine
    if mine:
        out.viewer_medians_ms.append(statistics.median(mine))
