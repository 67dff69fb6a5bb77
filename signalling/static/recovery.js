// What the stage does when a connection is lost, as small pieces it composes:
// when to try again (capped exponential backoff with jitter, or the server's
// Retry-After), what counts as a lost player (its connection, or its video no
// longer advancing while the connection says all is well), and a visible note
// on the stage ("网络不稳定，正在重新连接…", never an error code).
//
//   const wait = retryDelay(err, attempt);                 // ms before the next try
//   const probe = await sample(pc);                        // {video, audio} counters
//   const note = stageNote(container);  note.show("stage.reconnecting"); note.hide();

import { onLang, t } from "/static/i18n.js";

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 2000;

/**
 * Milliseconds to wait before attempt `attempt` (0 = the first retry, at once):
 * BACKOFF_BASE_MS·2^(attempt-1), capped at BACKOFF_CAP_MS, with jitter (a random
 * half of it added or not), so a crowd that lost the same network does not come
 * back in lockstep. The cap is short: a phone whose network is back reconnects
 * within about two seconds.
 */
export function backoff(attempt, random = Math.random) {
  if (attempt <= 0) return 0;
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/** The wait before the next try after `err`: its Retry-After (429, 503) if it has one. */
export function retryDelay(err, attempt, random = Math.random) {
  if (err && typeof err.retryAfter === "number") return err.retryAfter * 1000 + Math.round(random() * 250);
  return backoff(attempt, random);
}

/** Longest one recovery attempt (a request) may take before it is abandoned. */
export const ATTEMPT_MS = 4000;

/**
 * An AbortSignal for one attempt: aborted after `ms`, or by `abort()` (the network
 * came back: a request sent into the dead one may hang for many seconds).
 */
export function attempt(ms = ATTEMPT_MS) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return {
    signal: controller.signal,
    abort() { controller.abort(); },
    done() { clearTimeout(timer); },
  };
}

/** True for errors that say the network failed (try the same again), not the server. */
export function offline(err) {
  return err instanceof TypeError || (err && (err.name === "AbortError" || err.code === "disconnected"));
}

/** A sleep that `wake()` ends early (the network came back: try now). */
export function napper() {
  let wake = null;
  return {
    sleep(ms) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => { wake = null; resolve(); }, ms);
        wake = () => { clearTimeout(timer); wake = null; resolve(); };
      });
    },
    wake() { if (wake) wake(); },
  };
}

/** Counters of a receiving connection: video frames decoded, audio packets received. */
export async function sample(pc) {
  let video = 0;
  let audio = 0;
  try {
    (await pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      if (r.kind === "video") video += r.framesDecoded || 0;
      if (r.kind === "audio") audio += r.packetsReceived || 0;
    });
  } catch (_) { /* closed meanwhile */ }
  return { video, audio };
}

/**
 * Milliseconds since the selected candidate pair of `pc` last received a packet
 * (0 when unknown: not connected yet, or a browser without the figure).
 */
export async function silentFor(pc) {
  let silent = 0;
  try {
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type !== "transport" || !r.selectedCandidatePairId) return;
      const pair = stats.get(r.selectedCandidatePairId);
      if (pair && pair.lastPacketReceivedTimestamp) silent = Math.max(0, r.timestamp - pair.lastPacketReceivedTimestamp);
    });
  } catch (_) { /* closed meanwhile */ }
  return silent;
}

/** Connection states in which a player or publisher has lost its path. */
export const LOST_STATES = new Set(["disconnected", "failed", "closed"]);

/** Resolves true once `pc` is connected, false after `ms` or if it fails or closes. */
export function connectedWithin(pc, ms) {
  if (pc.connectionState === "connected") return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok) => { clearTimeout(timer); pc.removeEventListener("connectionstatechange", check); resolve(ok); };
    const check = () => {
      if (pc.connectionState === "connected") done(true);
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") done(false);
    };
    const timer = setTimeout(() => done(false), ms);
    pc.addEventListener("connectionstatechange", check);
  });
}

/**
 * A note over the stage (`container`: the element around the video), hidden until
 * shown: show(key, params) says it in the page's language; hide() takes it away.
 */
export function stageNote(container) {
  let el = null;
  let shown = null;
  const render = () => {
    if (!el || !shown) return;
    el.textContent = t(shown.key, shown.params);
  };
  return {
    show(key, params = {}) {
      if (!container) return;
      if (!el) {
        el = document.createElement("p");
        el.className = "chip recovery-note";
        el.setAttribute("role", "status");
        el.style.cssText = "position:absolute;left:50%;top:12px;transform:translateX(-50%);margin:0;"
          + "background:rgba(0,0,0,.6);color:#fff;z-index:3;pointer-events:none;white-space:nowrap;";
        container.append(el);
        onLang(render);
      }
      shown = { key, params };
      el.dataset.key = key;
      el.hidden = false;
      render();
    },
    hide() {
      shown = null;
      if (el) { el.hidden = true; delete el.dataset.key; }
    },
    relabel: render,
    get key() { return shown ? shown.key : null; },
  };
}
