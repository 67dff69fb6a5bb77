"""What the lab tests run in Chromium: the pages' own WHIP/WHEP module (media.js).

A lab page is the node's ``/healthz`` (any page of the node's origin will do):
the snippets import ``/static/media.js`` from it, as the host and viewer
pages do, so the browser publishes and plays exactly as a person's would.
The first-frame script and the origin's flags are the benchmark's
(``loadtests.netlab.chromium``), so tests and benchmark time the same thing.
The origin is plain http on a non-local address, so Chromium is told to
treat it as secure (getUserMedia needs that), see :func:`flags`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from loadtests.netlab import plan
from loadtests.netlab.chromium import FIRST_FRAME, origin_flags

__all__ = ["FIRST_FRAME", "flags"]  # FIRST_FRAME: [room, token, publisher, waitMs]


def flags(origin: str) -> list[str]:
    """Chromium flags for a lab page at ``origin`` (``http://ADDR:PORT``): the benchmark's
    (:func:`loadtests.netlab.chromium.origin_flags`): a secure context for the camera,
    and ADDR and the lab's TURN address let through the browser's resolver rules."""
    return origin_flags(origin, plan.TURN_PUBLIC)


#: Publish the fake camera to room r1 (WHIP); ``window.pub`` is the session and
#: ``window.states`` every connection state it went through.
PUBLISH = """async (token) => {
  const m = await import('/static/media.js');
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  window.pub = await m.publish('r1', token, stream);
  window.states = [window.pub.pc.connectionState];
  window.pub.pc.addEventListener('connectionstatechange',
    () => window.states.push(window.pub.pc.connectionState));
  return window.pub.pc.remoteDescription.sdp;
}"""

#: Stop the current WHEP session and drop its video element.
STOP_PLAY = """async () => {
  if (window.play) await window.play.stop();
  if (window.video) window.video.remove();
  window.play = null; window.video = null;
}"""

#: Frames the current WHEP session has decoded.
FRAMES = """async () => {
  let frames = 0;
  if (!window.play) return 0;
  (await window.play.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
  });
  return frames;
}"""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear between samples."""
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return float(cuts[max(0, min(98, round(q * 100) - 1))])


#: Milliseconds until the current WHEP session decodes a new video frame (polled
#: every 20 ms, at most ``waitMs``); -1 if none came.
NEXT_FRAME = """async (waitMs) => {
  const count = async () => {
    let frames = 0;
    (await window.play.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
    });
    return frames;
  };
  const t0 = performance.now();
  const before = await count();
  while (performance.now() - t0 < waitMs) {
    if (await count() > before) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  return -1;
}"""


#: Log, in the page, every advance of the decoded video frames of ``user``'s player
#: (the stage's, whichever WHEP session it holds now): ``window.frameLog`` is a list
#: of ``[performance.now(), frames]``, and ``[t, 'session']`` when the player took a
#: new session. Sampled every 25 ms, bounded.
FRAME_LOG = """(user) => {
  window.frameLog = [];
  let last = -1, current = null;
  const tick = async () => {
    const stage = window.livecore && window.livecore.stage;
    const entry = stage && stage.players.get(user);
    const session = entry && entry.session;
    if (session) {
      let frames = 0;
      try {
        (await session.pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
        });
      } catch (e) { /* closed meanwhile */ }
      const log = window.frameLog;
      if (session !== current) {
        current = session; last = frames; log.push([performance.now(), 'session']);
      } else if (frames > last) { last = frames; log.push([performance.now(), frames]); }
      if (log.length > 6000) log.splice(0, 2000);
    }
    setTimeout(tick, 25);
  };
  tick();
}"""


def first_frame_after(log: Sequence[Sequence[object]], at: float) -> float:
    """Milliseconds from ``at`` (the page's clock) to the first frame logged after it
    (:data:`FRAME_LOG`), or -1."""
    for when, what in log:
        if isinstance(when, (int, float)) and when > at and isinstance(what, (int, float)):
            return float(when) - at
    return -1.0


def back_after_longest_stall(log: Sequence[Sequence[object]], at: float) -> tuple[float, float]:
    """(the longest gap between frames after ``at``, ms from ``at`` to the first frame
    after that gap), from a :data:`FRAME_LOG`; the gap counts from ``at`` itself."""
    times = [float(w) for w, f in log if isinstance(f, (int, float)) and float(w) > at]  # type: ignore[arg-type]
    previous, longest, back = at, 0.0, -1.0
    for when in times:
        if when - previous > longest:
            longest, back = when - previous, when - at
        previous = when
    return longest, back
