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
// hls:    on the viewer page, fall back to HLS for the host's stream when WHEP
//         is refused (node_full) or fails.
// Events on the channel emitter: "stage" {publishing, error?}.

import { camera, publish, setMuted, switchCamera, watch, watchHls } from "/static/media.js";
import { t } from "/static/i18n.js";

export function mountStage({ channel, room, token, main, guests, goLive, note, hls = false,
  nameOf = (u) => u, selfPreview = false }) {
  const players = new Map(); // publisher → { session, el, tile }
  let mine = null; // our WHIP session
  let busy = false;
  let facing = "user";
  let muted = false;
  let selfTile = null;
  let fallback = null; // HLS player of the host's stream

  const me = () => (channel.model.you || {}).user;
  const host = () => (channel.model.meta || {}).host;
  const currentToken = () => (typeof token === "function" ? token() : token);

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

  async function play(user) {
    if (players.has(user)) return;
    const entry = { session: null, el: null, tile: null };
    players.set(user, entry);
    try {
      entry.session = await watch(room, currentToken(), user);
    } catch (err) {
      players.delete(user);
      if (hls && user === host() && main) startHls();
      else console.info("livecore: cannot play", user, err.code || err.message);
      return;
    }
    if (players.get(user) !== entry) { entry.session.stop(); return; }
    if (user === host() && main && !(mine && !selfPreview)) {
      entry.el = main;
      stopHls();
    } else {
      entry.tile = tile(user, nameOf(user));
      entry.el = entry.tile.video;
    }
    entry.el.srcObject = entry.session.stream;
    entry.el.play().catch(() => {});
  }

  async function startHls() {
    if (fallback) return;
    fallback = { stop() {} };
    try {
      fallback = await watchHls(main, room);
      channel.emit("stage", { hls: true });
    } catch (err) {
      fallback = null;
      console.info("livecore: no HLS either", err.message);
    }
  }

  function stopHls() {
    if (fallback) { fallback.stop(); fallback = null; }
  }

  // `remote`: the publisher left (stream_ended): the server closed our WHEP session already.
  function stopPlaying(user, { remote = false } = {}) {
    const entry = players.get(user);
    players.delete(user);
    if (!entry) return;
    if (entry.session) entry.session.stop({ remote });
    if (entry.tile) dropTile(entry.tile.box);
    else if (entry.el) entry.el.srcObject = null;
    if (user === host()) stopHls();
  }

  function sync() {
    const live = new Set((channel.model.streams || []).filter((u) => u !== me()));
    for (const user of [...players.keys()]) if (!live.has(user)) stopPlaying(user, { remote: true });
    if (!live.has(host())) stopHls();
    for (const user of live) play(user);
  }

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

  async function stop({ remote = false } = {}) {
    const session = mine;
    mine = null;
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

  if (goLive) goLive.addEventListener("click", () => (mine ? stop() : start()));
  channel.on("change", (parts) => { if (parts.has("streams") || parts.has("you") || parts.has("meta")) sync(); });
  channel.on("event", (ev) => {
    if (ev.t === "costream_accepted" && ev.user === me()) start();
    if (ev.t === "costream_ended" && ev.user === me()) stop({ remote: true });
  });
  window.addEventListener("pagehide", () => { stop(); for (const u of [...players.keys()]) stopPlaying(u); });
  return {
    start, stop, flip, mute, players,
    get publishing() { return mine; },
    get muted() { return muted; },
    get hls() { return fallback; },
  };
}
