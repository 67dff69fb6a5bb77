// The clip share page /c/{room}~{clip}?ref=CODE: plays the clip (muted at once, a
// tap for sound), shows the product and the group's progress, and leads into the
// live room (or its replay), carrying the share officer's code. Public REST only;
// no token. Chinese by default, English by the switch (i18n.js).
import { pathSegment, shareCode } from "/static/boot.js";
import { labelPage, t } from "/static/i18n.js";

const $ = (id) => document.getElementById(id);
const clipId = pathSegment(-1);
const ref = shareCode();
const state = { clip: null, room: null, buys: null };

function roomUrl(room) {
  const q = ref ? `?ref=${encodeURIComponent(ref)}` : "";
  return `/r/${encodeURIComponent(room)}${q}`;
}

async function getJson(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) return null;
  return answer.json();
}

function yuan(cents) {
  return (cents / 100).toFixed(cents % 100 ? 2 : 0);
}

function showGroup() {
  const { buys, clip } = state;
  if (!buys) return;
  const product = clip && clip.product;
  const open = buys.filter((b) => b.status === "open");
  const buy = open.find((b) => product && b.product === product) || open[0];
  if (!buy) return;
  const best = buy.groups[0];
  const members = best ? best.members : 0;
  const joined = buy.groups.reduce((n, g) => n + g.members, 0);
  // The public list may carry no price: then the product alone.
  const price = Number.isFinite(buy.price_cents) ? ` · ${t("clip.price", { yuan: yuan(buy.price_cents) })}` : "";
  $("group-product").textContent = `${buy.product}${price}`;
  $("group-bar").style.width = `${Math.min(100, Math.round((100 * members) / buy.target))}%`;
  const left = Math.max(0, buy.target - members);
  $("group-text").textContent = left > 0
    ? t("clip.group.togo", { n: joined, left }) : t("clip.group.formed", { n: joined });
  $("group").hidden = false;
}

function showRoom() {
  const { room } = state;
  if (!room) return;
  $("room-title").textContent = room.title;
  $("store").textContent = room.store;
  document.title = `${room.title} · ${t("clip.title")}`;
  const enter = $("enter");
  enter.href = roomUrl(room.id);
  const badge = $("room-status");
  if (room.status === "live") {
    badge.textContent = t("live");
    badge.dataset.status = "live";
    badge.hidden = false;
    enter.textContent = t("clip.enter.live");
  } else if (room.replay) {
    badge.textContent = t("ended");
    badge.dataset.status = "ended";
    badge.hidden = false;
    enter.textContent = t("stage.replay");
    const replay = $("replay");
    replay.href = room.replay;
    replay.hidden = false;
  } else {
    enter.textContent = t("clip.enter");
  }
  enter.hidden = false;
}

function showClip() {
  const { clip } = state;
  if (!clip) return;
  $("clip-title").textContent = clip.title;
  if (clip.product) {
    $("clip-product").textContent = t("clip.product", { name: clip.product });
    $("clip-product").hidden = false;
  }
  $("about").hidden = false;
}

function renderAll() {
  showClip();
  showRoom();
  showGroup();
}

/** Start playing muted (what a phone allows without a tap); a chip turns the sound on. */
function autoplay(video) {
  const sound = $("sound");
  const renderSound = () => { sound.hidden = !(video.muted && !video.paused); };
  video.addEventListener("playing", renderSound);
  video.addEventListener("volumechange", renderSound);
  sound.addEventListener("click", () => { video.muted = false; video.play().catch(() => {}); });
  video.muted = true;
  video.play().catch(() => { /* a tap on the controls plays it */ });
}

async function main() {
  labelPage(renderAll);
  const found = await getJson(`/api/clips/${encodeURIComponent(clipId)}`).catch(() => null);
  if (!found) {
    $("missing").hidden = false;
    document.querySelector(".share-video").hidden = true;
    return;
  }
  state.clip = found.clip;
  state.room = found.room;
  const video = $("clip");
  video.poster = state.clip.thumbnail;
  video.src = state.clip.video;
  video.dataset.clip = state.clip.id;
  autoplay(video);
  renderAll();
  if (state.clip.kind === "explain") { // 讲解 clips are ranked by the product clicks they bring
    $("enter").addEventListener("click", () => {
      fetch(`/api/clips/${encodeURIComponent(state.clip.id)}/click`, { method: "POST", keepalive: true }).catch(() => {});
    });
  }
  const buys = await getJson(`/api/rooms/${encodeURIComponent(state.clip.room)}/groupbuys`).catch(() => null);
  if (buys) { state.buys = buys.groupbuys; showGroup(); }
}

main();
