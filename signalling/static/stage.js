// The stage of the pages: who is live (channel.model.streams) becomes WHEP
// players; the host (or an accepted KOC) publishes the camera with WHIP.
//
//   mountStage({ channel, room, token, main, guests, goLive, note, hls, nameOf })
//
// main:   <video> for the room host's stream (viewer page) or the local
//         camera preview (host page);
// guests: container for picture-in-picture tiles of the other publishers (a
//         KOC for the audience; the KOC for the host; the host and "me" for a KOC);
// goLive: optional button that starts/stops publishing (host);
// endLive: what goLive does while publishing (the host page: confirm, end the room);
// hls:    on the viewer page, fall back to HLS for the host's stream when WHEP
//         is refused (node_full) or fails, and while a lost player reconnects.
// Events on the channel emitter: "stage" {publishing, error?} | {hls, reason} |
// {recovering: seconds | null} (a publisher reconnecting) | {away: reason | null}
// (the host's stream left without the host ending it: lost, replaced, origin_lost).
//
// Recovery without a reload (docs/architecture.md, "When a network fails"):
// - a player watches its connection and its decoded frames; on loss it restarts
//   ICE of its WHEP session in place at once (PATCH, RFC 9725 §4.4), and opens a
//   new WHEP session instead if that one is gone or the restart brings no video
//   within RESTART_CONNECT_MS; it tries again with capped exponential backoff
//   and jitter (Retry-After on 429 and 503), plays the room's HLS after
//   HLS_AFTER_MS without video, and goes back to WebRTC when video is back;
// - a publisher whose connection drops or whose network changes restarts ICE
//   (PATCH); if the session is gone or the restart does not connect, it
//   publishes anew (the server replaces the old session; viewers follow
//   stream_ended "replaced" and stream_started); it never DELETEs on the way,
//   which would end the live.

import {
  camera, publish, restartIce, setMuted, switchCamera, watch, watchHls,
} from "/static/media.js";
import { t } from "/static/i18n.js";
import {
  LOST_STATES, attempt, connectedWithin, napper, offline, retryDelay, sample, silentFor, stageNote,
} from "/static/recovery.js";

/** How often a player's frames are looked at. */
const PROBE_MS = 500;
/** Video not advancing this long while audio does (or the connection is down): lost. */
const STALL_MS = 3000;
/** A new session that is not connected this long after its answer is given up. */
const CONNECT_MS = 6000;
/** Without video this long while reconnecting: play the room's HLS meanwhile. */
const HLS_AFTER_MS = 4000;
/** A publisher "disconnected" this long (Chrome may come back by itself) restarts ICE. */
const DISCONNECTED_MS = 1000;
/** Nothing received on a publisher's path this long (consent checks, RTCP): recover. */
const SILENT_MS = 2500;
/** An ICE restart that is answered but does not connect (a player: brings no video)
 * within this: publish (play) anew. */
const RESTART_CONNECT_MS = 5000;
/** Refusals after which a restart cannot work: the session is gone or not restartable. */
const SESSION_GONE = new Set([404, 409, 412, 422, 428]);
/** Refusals no retry can fix (the token): the publisher stops. */
const FATAL = new Set([401, 403]);

export function mountStage({ channel, room, token, main, guests, goLive, note, hls = false,
  nameOf = (u) => u, selfPreview = false, endLive = null }) {
  const players = new Map(); // publisher → player entry (see newEntry)
  let mine = null; // our WHIP session
  let busy = false;
  let facing = "user";
  let muted = false;
  let selfTile = null;
  let fallback = null; // HLS player of the host's stream
  let fallbackReason = null;
  let recovering = null; // { since, attempt, nap } while our publishing reconnects
  const stageBox = main ? main.parentElement : null;
  const playerNote = stageNote(stageBox);
  const publishNote = stageNote(stageBox);

  const me = () => (channel.model.you || {}).user;
  const host = () => (channel.model.meta || {}).host;
  const currentToken = () => (typeof token === "function" ? token() : token);
  const now = () => performance.now();

  function tile(user, label) {
    const video = document.createElement("video");
    video.playsInline = true;
    video.muted = true;
    video.autoplay = true;
    const name = document.createElement("span");
    name.className = "tile-name";
    name.textContent = label;
    const box = document.createElement("figure");
    box.className = "tile";
    box.dataset.user = user;
    box.append(video, name);
    guests.append(box);
    guests.hidden = false;
    return { box, video };
  }

  function dropTile(box) {
    if (box) box.remove();
    if (!guests.children.length) guests.hidden = true;
  }

  // -- players (WHEP) ----------------------------------------------------------------

  function newEntry() {
    // session: the session shown; lostAt: when it was found lost (0: playing);
    // attempt: retries since; retrying: a recovery loop runs; restartable: the session
    // may still restart ICE in place; probe: the watchdog timer.
    return { session: null, shown: null, el: null, tile: null, lostAt: 0, attempt: 0,
      retrying: false, scheduled: false, trying: null, probe: 0, nap: napper(), hlsTimer: 0,
      restartable: false };
  }

  const current = (user, entry) => players.get(user) === entry;

  function play(user) {
    if (players.has(user)) return;
    const entry = newEntry();
    players.set(user, entry);
    connect(user, entry);
  }

  /** Resolves true once `entry` plays again (video advancing: `recovered`), false after `ms`. */
  async function playingWithin(user, entry, ms) {
    const until = now() + ms;
    while (current(user, entry) && entry.lostAt && now() < until) {
      await new Promise((resolve) => setTimeout(resolve, PROBE_MS / 5));
    }
    return current(user, entry) && !entry.lostAt;
  }

  /** A lost player restarts its session's ICE in place (PATCH); else, and for the first
   * session, POST a WHEP offer until one is answered (backoff between tries), then show it. */
  async function connect(user, entry) {
    if (entry.retrying) return;
    entry.retrying = true;
    try {
      while (current(user, entry)) {
        let session;
        const trying = attempt();
        entry.trying = trying;
        const restarting = entry.restartable && !!entry.session && !!entry.lostAt;
        try {
          if (restarting) {
            await restartIce(entry.session, { signal: trying.signal });
            if (await playingWithin(user, entry, RESTART_CONNECT_MS)) return;
            entry.restartable = false; // answered, but no video: a new session
            continue;
          }
          session = await watch(room, currentToken(), user, { signal: trying.signal });
        } catch (err) {
          if (!current(user, entry)) return;
          if (restarting && (SESSION_GONE.has(err.status) || (err.status == null && !offline(err)))) {
            entry.restartable = false; // gone, or not restartable: a new session, now
            continue;
          }
          if (!entry.session && err.status === 503 && hls && user === host() && main) startHls("busy");
          else if (!entry.session && !entry.lostAt) lost(user, entry);
          if (FATAL.has(err.status)) { console.info("livecore: cannot play", user, err.code); return; }
          await entry.nap.sleep(retryDelay(err, ++entry.attempt));
          continue;
        } finally {
          trying.done();
          entry.trying = null;
        }
        if (!current(user, entry)) { session.stop(); return; }
        adopt(user, entry, session);
        return;
      }
    } finally {
      entry.retrying = false;
    }
  }

  /** A new session of `user`: shown now (the first, or no HLS meanwhile) or once connected. */
  function adopt(user, entry, session) {
    const previous = entry.session;
    entry.session = session;
    entry.restartable = true;
    // A session that was tried but never shown goes at once; the shown one stays on
    // screen (its last picture) until the new one is connected.
    if (previous && previous !== entry.shown) previous.stop({ remote: previous.pc.connectionState !== "connected" });
    const show = () => {
      if (!current(user, entry) || entry.session !== session) return;
      const old = entry.shown;
      entry.shown = session;
      bind(user, entry, session);
      if (old && old !== session) old.stop({ remote: old.pc.connectionState !== "connected" });
    };
    if (!previous && !fallback) show();
    else connectedWithin(session.pc, CONNECT_MS).then((ok) => { if (ok) show(); });
    watchPlayer(user, entry, session);
  }

  function bind(user, entry, session) {
    if (!entry.el) {
      if (user === host() && main && !(mine && !selfPreview)) {
        entry.el = main;
      } else {
        entry.tile = tile(user, nameOf(user));
        entry.el = entry.tile.video;
      }
    }
    if (entry.el === main) stopHls();
    entry.el.srcObject = session.stream;
    entry.el.play().catch(() => {});
  }

  /** Watch one session: its connection state, and frames (video) and packets (audio). */
  function watchPlayer(user, entry, session) {
    clearInterval(entry.probe);
    const born = now();
    let last = { video: -1, audio: -1 };
    let videoAt = born;
    let audioAt = born;
    const check = async () => {
      if (!current(user, entry) || entry.session !== session) { clearInterval(probe); return; }
      const state = session.pc.connectionState;
      const seen = await sample(session.pc);
      const t0 = now();
      if (seen.video > last.video) videoAt = t0;
      if (seen.audio > last.audio) audioAt = t0;
      const advancing = last.video >= 0 && seen.video > last.video;
      last = seen;
      if (state === "connected" && advancing && entry.lostAt) recovered(user, entry);
      if (entry.retrying) return;
      const stalled = state === "connected" && seen.video > 0 && t0 - videoAt > STALL_MS
        && t0 - audioAt < STALL_MS; // audio still comes: our video path, not the host, is stuck
      const neverUp = state !== "connected" && t0 - born > CONNECT_MS && !entry.lostAt;
      // The node checks consent every second: silence on the path says our network
      // changed, seconds before the browser's ICE does (and before the node gives the
      // session up, so its ICE can still restart in place). A host away is not this.
      const silent = state === "connected" && await silentFor(session.pc) > SILENT_MS;
      if (LOST_STATES.has(state) || stalled || neverUp || silent) lost(user, entry);
      else if (entry.lostAt && state !== "connected" && t0 - born > CONNECT_MS) lost(user, entry);
    };
    const probe = setInterval(check, PROBE_MS);
    entry.probe = probe;
    session.pc.addEventListener("connectionstatechange", () => {
      if (LOST_STATES.has(session.pc.connectionState) && entry.session === session) lost(user, entry);
    });
  }

  /** `user`'s player lost its path: a new WHEP session at once, HLS if it takes long. */
  function lost(user, entry) {
    if (!current(user, entry)) return;
    if (!entry.lostAt) {
      entry.lostAt = now();
      entry.attempt = 0;
      if (user === host() && main) {
        playerNote.show("stage.reconnecting");
        clearTimeout(entry.hlsTimer);
        entry.hlsTimer = setTimeout(() => {
          if (current(user, entry) && entry.lostAt && hls) startHls("recovery");
        }, HLS_AFTER_MS);
      }
    }
    if (!entry.retrying && !entry.scheduled) {
      const attempt = entry.attempt++;
      entry.scheduled = true;
      (attempt ? entry.nap.sleep(retryDelay(null, attempt)) : Promise.resolve()).then(() => {
        entry.scheduled = false;
        if (current(user, entry)) connect(user, entry);
      });
    }
  }

  function recovered(user, entry) {
    entry.lostAt = 0;
    entry.attempt = 0;
    clearTimeout(entry.hlsTimer);
    if (user === host()) { playerNote.hide(); if (fallbackReason === "recovery") stopHls(); }
  }

  async function startHls(reason) {
    if (fallback) return;
    fallback = { stop() {} };
    fallbackReason = reason;
    try {
      fallback = await watchHls(main, room, {
        onQuality: (quality) => channel.emit("stage", { quality }),
      });
      channel.emit("stage", { hls: true, reason });
    } catch (err) {
      fallback = null;
      fallbackReason = null;
      console.info("livecore: no HLS either", err.message);
    }
  }

  function stopHls() {
    if (fallback) {
      fallback.stop(); fallback = null; fallbackReason = null;
      channel.emit("stage", { quality: null });
    }
    const entry = players.get(host());
    if (entry && entry.el === main && entry.session && main.srcObject !== entry.session.stream) {
      main.srcObject = entry.session.stream;
      main.play().catch(() => {});
    }
  }

  // `remote`: the publisher left (stream_ended): the server closed our WHEP session already.
  function stopPlaying(user, { remote = false } = {}) {
    const entry = players.get(user);
    players.delete(user);
    if (!entry) return;
    clearInterval(entry.probe);
    clearTimeout(entry.hlsTimer);
    entry.nap.wake();
    if (entry.session) entry.session.stop({ remote });
    if (entry.shown && entry.shown !== entry.session) entry.shown.stop({ remote: true });
    if (entry.tile) dropTile(entry.tile.box);
    else if (entry.el) entry.el.srcObject = null;
    if (user === host()) { stopHls(); playerNote.hide(); }
  }

  function sync() {
    const live = new Set((channel.model.streams || []).filter((u) => u !== me()));
    for (const user of [...players.keys()]) if (!live.has(user)) stopPlaying(user, { remote: true });
    if (!live.has(host())) stopHls();
    for (const user of live) play(user);
  }

  /** The network changed under a playing player: restart its ICE in place now (its old
   * path may be dead already; media goes on on it while it lives). A restart that
   * fails makes it a lost player. */
  async function refresh(user, entry) {
    if (entry.lostAt || entry.retrying || !entry.restartable || !entry.session) return;
    entry.retrying = true;
    const trying = attempt();
    entry.trying = trying;
    let failed = false;
    try {
      await restartIce(entry.session, { signal: trying.signal });
    } catch (err) {
      failed = true;
      if (SESSION_GONE.has(err.status) || (err.status == null && !offline(err))) entry.restartable = false;
    } finally {
      trying.done();
      entry.trying = null;
      entry.retrying = false;
    }
    if (failed) lost(user, entry);
  }

  let connectionType = navigator.connection ? navigator.connection.type : undefined;

  /** The network is back (or changed): every player that is reconnecting tries now; the
   * others restart ICE in place when the network itself changed (back online, another
   * connection type), not on every new bandwidth estimate the browser reports. */
  function networkBack(event) {
    const type = navigator.connection ? navigator.connection.type : undefined;
    const changed = !event || event.type === "online" || type !== connectionType;
    connectionType = type;
    for (const [user, entry] of players) {
      if (entry.lostAt) {
        entry.attempt = 0;
        if (entry.trying) entry.trying.abort(); // sent into the dead network: again now
        entry.nap.wake();
      } else if (changed) {
        refresh(user, entry);
      }
    }
    if (mine) publisherTrouble(0);
  }

  // -- publishing (WHIP) -------------------------------------------------------------

  async function start() {
    if (busy || mine) return;
    busy = true;
    try {
      const stream = await camera(facing);
      if (selfPreview) {
        selfTile = tile(me() || "me", t("costream.preview"));
        selfTile.box.classList.add("self");
        selfTile.video.srcObject = stream;
        selfTile.video.play().catch(() => {});
      } else if (main) {
        main.srcObject = stream;
        main.play().catch(() => {});
      }
      mine = await publish(room, currentToken(), stream);
      watchPublisher(mine);
      setMuted(mine, muted);
      if (goLive) { goLive.dataset.i18n = "host.endlive"; goLive.textContent = t("host.endlive"); goLive.classList.add("live"); }
      if (note) note.hidden = true;
      channel.emit("stage", { publishing: true });
    } catch (err) {
      await stop();
      channel.emit("stage", { publishing: false, error: err.code || "publish_refused" });
    } finally {
      busy = false;
    }
  }

  let troubleTimer = 0;

  function watchPublisher(session) {
    session.pc.addEventListener("connectionstatechange", () => {
      if (session !== mine) return;
      const state = session.pc.connectionState;
      if (state === "failed") publisherTrouble(0);
      else if (state === "disconnected") publisherTrouble(DISCONNECTED_MS);
    });
    // The node answers consent and sends RTCP every second or so: silence on the
    // path says it broke (a network switch) seconds before the browser's ICE does.
    const probe = setInterval(async () => {
      if (session !== mine) { clearInterval(probe); return; }
      if (!recovering && await silentFor(session.pc) > SILENT_MS) publisherTrouble(0);
    }, PROBE_MS);
  }

  /** Our connection dropped or the network changed: recover after `delayMs` (unless back). */
  function publisherTrouble(delayMs) {
    if (!mine) return;
    if (recovering) {
      recovering.attempt = 0;
      if (recovering.trying) recovering.trying.abort();
      recovering.nap.wake();
      return;
    }
    clearTimeout(troubleTimer);
    troubleTimer = setTimeout(() => {
      if (mine && !recovering && (delayMs === 0 || mine.pc.connectionState !== "connected")) recoverPublishing();
    }, delayMs);
  }

  /** True once `pc` is connected and hears the node again (a restarted ICE may still say
   * "connected" from before while its old path is dead), false after `ms`. */
  async function pathBackWithin(pc, ms) {
    const until = now() + ms;
    while (now() < until) {
      if (pc.connectionState === "connected" && await silentFor(pc) < SILENT_MS / 2) return true;
      if (pc.connectionState === "closed") return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  }

  /** ICE restart first; publish anew if the session is gone or the restart does not connect. */
  async function recoverPublishing() {
    const state = { since: now(), attempt: 0, nap: napper(), restartable: true, trying: null };
    recovering = state;
    const tick = () => {
      const seconds = Math.floor((now() - state.since) / 1000);
      publishNote.show("host.reconnecting", { s: seconds });
      channel.emit("stage", { recovering: seconds });
    };
    tick();
    const ticker = setInterval(tick, 1000);
    try {
      while (mine && recovering === state) {
        const trying = attempt();
        state.trying = trying;
        try {
          if (state.restartable) {
            await restartIce(mine, { signal: trying.signal });
            if (await pathBackWithin(mine.pc, RESTART_CONNECT_MS)) break;
            state.restartable = false; // answered, but no path: a new session
            continue;
          }
          const old = mine;
          const next = await publish(room, currentToken(), old.stream, { signal: trying.signal });
          if (mine !== old) { next.pc.close(); break; } // stopped meanwhile
          mine = next; // the server replaced the old session: no DELETE (it would end the live)
          old.pc.close();
          setMuted(next, muted);
          watchPublisher(next);
          if (await connectedWithin(next.pc, CONNECT_MS)) break;
        } catch (err) {
          if (FATAL.has(err.status)) {
            await stop();
            channel.emit("stage", { publishing: false, error: err.code || "publish_refused" });
            return;
          }
          // Refused, or answered but not applicable (a DOMException): publish anew. A
          // TypeError (fetch: no network) or no candidate yet: the same again later.
          console.info("livecore: reconnecting the stream:", err.code || err.name, err.message);
          if (SESSION_GONE.has(err.status) || (err.status == null && !offline(err))) state.restartable = false;
          await state.nap.sleep(retryDelay(err, ++state.attempt));
        } finally {
          trying.done();
          state.trying = null;
        }
      }
    } finally {
      clearInterval(ticker);
      if (recovering === state) recovering = null;
      publishNote.hide();
      channel.emit("stage", { recovering: null, recovered: !!mine && mine.pc.connectionState === "connected" });
    }
  }

  async function stop({ remote = false } = {}) {
    const session = mine;
    mine = null;
    clearTimeout(troubleTimer);
    if (recovering) { recovering.nap.wake(); recovering = null; }
    publishNote.hide();
    if (session) {
      await session.stop({ remote });
      for (const tr of session.stream.getTracks()) tr.stop();
    }
    if (selfTile) { dropTile(selfTile.box); selfTile = null; }
    if (main && !selfPreview && main.srcObject && !players.has(host())) main.srcObject = null;
    if (goLive) { goLive.dataset.i18n = "host.golive"; goLive.textContent = t("host.golive"); goLive.classList.remove("live"); }
    if (session) channel.emit("stage", { publishing: false });
  }

  async function flip() {
    facing = facing === "user" ? "environment" : "user";
    if (!mine) return facing;
    try {
      await switchCamera(mine, facing);
      const view = selfPreview ? selfTile && selfTile.video : main;
      if (view) view.srcObject = mine.stream;
    } catch (err) {
      facing = facing === "user" ? "environment" : "user";
      throw err;
    }
    return facing;
  }

  function mute(next = !muted) {
    muted = next;
    if (mine) setMuted(mine, muted);
    return muted;
  }

  // 下播 is the host's decision (`endLive`: confirm, end the room, then stop); without
  // one the button stops publishing.
  if (goLive) goLive.addEventListener("click", () => (mine ? (endLive ? endLive() : stop()) : start()));
  channel.on("change", (parts) => { if (parts.has("streams") || parts.has("you") || parts.has("meta")) sync(); });
  channel.on("event", (ev) => {
    if (ev.t === "costream_accepted" && ev.user === me()) start();
    if (ev.t === "costream_ended" && ev.user === me()) stop({ remote: true });
    // A publisher's session ended (replaced by a new one, lost, or its node died):
    // drop the player now even if stream_started comes in the same batch.
    if (ev.t === "stream_ended" && ev.user !== me()) {
      stopPlaying(ev.user, { remote: true });
      if (ev.user === host()) channel.emit("stage", { away: ev.reason === "ended" ? null : ev.reason || null });
    }
    if (ev.t === "stream_started" && ev.user === host()) channel.emit("stage", { away: null });
  });
  window.addEventListener("online", networkBack);
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener("change", networkBack);
  }
  // A page that goes away (a reload, a killed browser) is not a publisher who ended:
  // its connection closes without a DELETE, so the server reports the stream "lost"
  // and the room waits out the end grace for the page to come back.
  window.addEventListener("pagehide", () => { stop({ remote: true }); for (const u of [...players.keys()]) stopPlaying(u); });
  return {
    start, stop, flip, mute, players,
    get publishing() { return mine; },
    get recovering() { return recovering ? Math.floor((now() - recovering.since) / 1000) : null; },
    get muted() { return muted; },
    get hls() { return fallback; },
  };
}
