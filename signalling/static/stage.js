// The stage of both pages: who is live (channel.model.streams) becomes WHEP
// players; the host (or an accepted KOC) publishes the camera with WHIP.
//
//   mountStage({ channel, room, token, main, guests, goLive, note })
//
// main:   <video> for the room host's stream (viewer page) or the local
//         camera preview (host page);
// guests: container for small tiles of the other publishers (a KOC for the
//         audience; the KOC for the host; the host for the KOC);
// goLive: optional button that starts/stops publishing (host, accepted KOC).

import { camera, publish, watch } from "/static/media.js";

export function mountStage({ channel, room, token, main, guests, goLive, note }) {
  const players = new Map(); // publisher → { session, el }
  let mine = null; // our WHIP session
  let busy = false;

  const me = () => (channel.model.you || {}).user;
  const host = () => (channel.model.meta || {}).host;

  async function play(user) {
    if (players.has(user)) return;
    const entry = { session: null, el: null };
    players.set(user, entry);
    try {
      entry.session = await watch(room, token, user);
    } catch (err) {
      players.delete(user);
      console.warn("cannot play", user, err.message);
      return;
    }
    if (players.get(user) !== entry) { entry.session.stop(); return; }
    if (user === host() && main && !mine) {
      entry.el = main;
    } else {
      entry.el = document.createElement("video");
      entry.el.className = "guest";
      entry.el.playsInline = true;
      entry.el.muted = true;
      entry.el.autoplay = true;
      entry.el.title = user;
      guests.append(entry.el);
      guests.hidden = false;
    }
    entry.el.srcObject = entry.session.stream;
    entry.el.play().catch(() => {});
  }

  function stopPlaying(user) {
    const entry = players.get(user);
    players.delete(user);
    if (!entry) return;
    if (entry.session) entry.session.stop();
    if (entry.el && entry.el !== main) entry.el.remove();
    else if (entry.el) entry.el.srcObject = null;
    if (!guests.children.length) guests.hidden = true;
  }

  function sync() {
    const live = new Set((channel.model.streams || []).filter((u) => u !== me()));
    for (const user of [...players.keys()]) if (!live.has(user)) stopPlaying(user);
    for (const user of live) play(user);
  }

  async function start() {
    if (busy || mine) return;
    busy = true;
    try {
      const stream = await camera();
      if (main) { main.srcObject = stream; main.play().catch(() => {}); }
      mine = await publish(room, token, stream);
      if (goLive) { goLive.textContent = "下播 End live"; goLive.classList.add("live"); }
      if (note) note.hidden = true;
    } catch (err) {
      channel.emit("error", { code: err.status ? "publish_refused" : "camera", message: err.message });
      await stop();
    } finally {
      busy = false;
    }
  }

  async function stop() {
    const session = mine;
    mine = null;
    if (session) {
      await session.stop();
      for (const t of session.stream.getTracks()) t.stop();
    }
    if (main && main.srcObject && !players.has(host())) main.srcObject = null;
    if (goLive) { goLive.textContent = "开播 Go live"; goLive.classList.remove("live"); }
  }

  if (goLive) goLive.addEventListener("click", () => (mine ? stop() : start()));
  channel.on("change", (parts) => { if (parts.has("streams") || parts.has("you")) sync(); });
  channel.on("event", (ev) => {
    if (ev.t === "costream_accepted" && ev.user === me()) start();
    if (ev.t === "costream_ended" && ev.user === me()) stop();
  });
  window.addEventListener("pagehide", () => { stop(); for (const u of [...players.keys()]) stopPlaying(u); });
  return { start, stop, players, get publishing() { return mine; } };
}
