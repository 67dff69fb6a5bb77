"""The lab's HLS viewer: the viewer page sent to LL-HLS, how far behind it plays, its ABR.

A viewer page (``/r/ROOM``, a guest) on its own phone is sent to the room's
LL-HLS the way a person's page is: the node is at its WebRTC capacity
(``--media-max-sessions`` = the host and the WebRTC viewers), so its WHEP offer
is refused ``node_full`` and the page plays ``/hls/ROOM/master.m3u8`` in hls.js
(``media.js`` ``watchHls``, low-latency mode). Sampled every 0.25 s:

- behind live: ``Date.now() - hls.playingDate``, the wall clock now against the
  ``EXT-X-PROGRAM-DATE-TIME`` of the frame playing, which the recorder stamps
  with the node's clock on the frame's arrival (one machine, one clock);
- the rendition playing (``hls.currentLevel``'s height) and whether the video's
  time advances.

The WebRTC viewer's own distance from the node is estimated from its
``getStats``: the jitter buffer's delay per frame and the decode time per frame
over the last interval, plus half the candidate pair's round-trip time
(:class:`WebrtcDelay`); ``hls_behind_webrtc_s`` is the difference of the medians.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass, field
from typing import Any

#: The HLS viewer page's player: null fields until hls.js plays.
HLS_SAMPLE = """() => {
  const stage = window.livecore && window.livecore.stage;
  const hls = stage && stage.hls && stage.hls.hls;
  const video = document.querySelector('#player');
  const out = { at: performance.now(), on: !!hls, behind: null, height: 0,
                time: video ? video.currentTime : 0 };
  if (!hls) return out;
  if (hls.playingDate) out.behind = (Date.now() - hls.playingDate.getTime()) / 1000;
  const level = hls.levels[hls.currentLevel];
  out.height = level && level.height ? level.height : 0;
  return out;
}"""

#: Where the HLS page stands (for a run whose HLS viewer never played).
HLS_STATE = """() => {
  const lc = window.livecore || {};
  const stage = lc.stage;
  const hls = stage && stage.hls && stage.hls.hls;
  const video = document.querySelector('#player');
  return JSON.stringify({
    channel: lc.channel ? lc.channel.status : null, stage: !!stage,
    fallback: !!(stage && stage.hls),
    hlsjs: !!hls, levels: hls ? hls.levels.length : null, webrtc: !!(video && video.srcObject),
    ready: video ? video.readyState : null, time: video ? video.currentTime : null,
    error: video && video.error ? video.error.code : null,
  });
}"""

#: Count hls.js's errors on the page from now on: {"details (fatal)": n} in
#: ``window.netlabHlsErrors`` (a lab's listener on the page's own player).
HLS_ERRORS_WATCH = """() => {
  const hls = window.livecore.stage.hls.hls;
  window.netlabHlsErrors = {};
  hls.on('hlsError', (_, d) => {
    const key = `${d.details}${d.fatal ? ' (fatal)' : ''}`;
    window.netlabHlsErrors[key] = (window.netlabHlsErrors[key] || 0) + 1;
  });
}"""

#: The renditions of the master playlist as hls.js read them: [{height, bitrate}].
HLS_LEVELS = """() => {
  const hls = window.livecore.stage.hls.hls;
  return hls.levels.map((l) => ({ height: l.height, bitrate: l.bitrate }));
}"""

#: The WHEP viewer's delay sums (``window.play``, the lab's own player).
WEBRTC_DELAY = """async () => {
  const out = { jb: 0, emitted: 0, decode: 0, decoded: 0, rtt: null };
  if (!window.play) return out;
  const reports = await window.play.pc.getStats();
  let pair = null;
  reports.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      out.jb = r.jitterBufferDelay || 0; out.emitted = r.jitterBufferEmittedCount || 0;
      out.decode = r.totalDecodeTime || 0; out.decoded = r.framesDecoded || 0;
    }
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = r.selectedCandidatePairId;
  });
  const selected = pair && reports.get(pair);
  if (selected && selected.currentRoundTripTime != null) out.rtt = selected.currentRoundTripTime;
  return out;
}"""


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"p50": round(statistics.median(values), 2), "max": round(max(values), 2),
            "samples": len(values)}  # fmt: skip


def _shares(heights: list[int]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for h in heights:
        counts[f"{h}p"] = counts.get(f"{h}p", 0) + 1
    return {k: round(n / len(heights), 2) for k, n in sorted(counts.items())} if heights else {}


@dataclass
class HlsSamples:
    """The HLS page's samples: (seconds, behind live or None, height, video time)."""

    rows: list[tuple[float, float | None, int, float]] = field(default_factory=list)

    def add(self, s: dict[str, Any]) -> None:
        behind = None if s.get("behind") is None else float(s["behind"])
        self.rows.append((s["at"] / 1000, behind, int(s["height"]), float(s["time"])))

    @property
    def played(self) -> bool:
        """hls.js played: a frame's date known, and the video's time advanced."""
        times = [r[3] for r in self.rows]
        return any(r[1] is not None for r in self.rows) and bool(times) and max(times) > min(times)

    def behind(self) -> dict[str, float] | None:
        """{p50, max, samples} of seconds behind live over the samples."""
        return _spread([r[1] for r in self.rows if r[1] is not None])

    def levels(self) -> dict[str, float]:
        """Share of samples per rendition height (none while nothing plays)."""
        return _shares([r[2] for r in self.rows if r[2]])

    def stalled_pct(self) -> float | None:
        """Share of the span in which the video's time did not advance (a stall)."""
        rows = self.rows
        if len(rows) < 2 or rows[-1][0] <= rows[0][0]:
            return None
        still = sum(b[0] - a[0] for a, b in itertools.pairwise(rows) if b[3] <= a[3])
        return round(100 * still / (rows[-1][0] - rows[0][0]), 2)

    def first(self, test: Any) -> float | None:
        """Seconds from the first sample to the first whose height passes ``test``."""
        for row in self.rows:
            if row[2] and test(row[2]):
                return round(row[0] - self.rows[0][0], 1)
        return None


@dataclass
class WebrtcDelay:
    """A WHEP viewer's playout delay after the node, per interval between two samples:
    jitter buffer delay per emitted frame + decode time per frame + RTT / 2."""

    last: dict[str, Any] | None = None
    values: list[float] = field(default_factory=list)

    def add(self, s: dict[str, Any]) -> None:
        last, self.last = self.last, s
        if last is None or s["rtt"] is None:
            return
        emitted, decoded = s["emitted"] - last["emitted"], s["decoded"] - last["decoded"]
        if emitted <= 0 or decoded <= 0:
            return
        jitter = (s["jb"] - last["jb"]) / emitted
        decode = (s["decode"] - last["decode"]) / decoded
        self.values.append(jitter + decode + s["rtt"] / 2)

    def figures(self) -> dict[str, float] | None:
        return _spread(self.values)


def hls_figures(
    window: HlsSamples, capped: HlsSamples, after: HlsSamples, webrtc: WebrtcDelay,
    renditions: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The JSON's HLS keys: behind live (and behind the WebRTC viewer) over the window,
    the renditions played before / during / after the cap, the seconds to move."""
    behind, rtc = window.behind(), webrtc.figures()
    at_cap = next((r[2] for r in reversed(window.rows) if r[2]), 0)
    top = max((int(r["height"]) for r in renditions), default=0)
    return {
        "hls_behind_live_s": behind,
        "webrtc_behind_node_s": rtc,
        "hls_behind_webrtc_s": (
            {"p50": round(behind["p50"] - rtc["p50"], 2)} if behind and rtc else None
        ),
        "hls_renditions": renditions,
        "hls_levels": {
            "before": window.levels(),
            "capped": capped.levels(),
            "after": after.levels(),
        },
        "hls_stalled_pct": {
            "before": window.stalled_pct(),
            "capped": capped.stalled_pct(),
            "after": after.stalled_pct(),
        },
        **switches(capped, after, at_cap, top),
    }


def switches(capped: HlsSamples, after: HlsSamples, at_cap: int, top: int) -> dict[str, Any]:
    """``hls_switch_down_s``: seconds from the cap to the first rendition below the one
    playing when it came (hls.js may move only after the cap is lifted: counted across
    both); ``hls_switch_up_s``: seconds from the lift to the top rendition again, after
    that move down. None where the move did not happen."""
    rows = [r for r in capped.rows + after.rows if r[2]]
    if not rows or not capped.rows or not at_cap:
        return {"hls_switch_down_s": None, "hls_switch_up_s": None}
    down = next((r for r in rows if r[2] < at_cap), None)
    lifted = after.rows[0][0] if after.rows else None
    up = None
    if down is not None and lifted is not None:
        up = next((r for r in rows if r[0] > down[0] and r[0] >= lifted and r[2] >= top), None)
    return {
        "hls_switch_down_s": round(down[0] - capped.rows[0][0], 1) if down else None,
        "hls_switch_up_s": round(up[0] - lifted, 1) if up and lifted is not None else None,
    }
