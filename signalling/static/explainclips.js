// The viewer page's 讲解 clips on the product card (the dock): the pinned product's
// explanation clips, most clicked first (GET /api/rooms/{room}/explains), as a row of
// thumbnails; a tap plays one in a full-screen player and counts a product click for
// it (POST /api/clips/{id}/click). A new explanation (clip_ready) refreshes the row.
// Kept out of dock.js: it watches the dock and adds its row whenever the dock is drawn.
import { t } from "/static/i18n.js";
import { h, $ } from "/static/room.js";

const MAX_PRODUCTS = 50;
const cache = new Map(); // product name → clips (or a pending promise)

async function load(room, product, fresh = false) {
  if (!fresh && cache.has(product)) return cache.get(product);
  const pending = fetch(`/api/rooms/${encodeURIComponent(room)}/explains?product=${encodeURIComponent(product)}`,
    { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : { clips: [] }))
    .then((body) => { cache.set(product, body.clips || []); return body.clips || []; })
    .catch(() => { cache.delete(product); return []; });
  if (cache.size >= MAX_PRODUCTS) cache.delete(cache.keys().next().value);
  cache.set(product, pending);
  return pending;
}

function play(clip) {
  fetch(`/api/clips/${encodeURIComponent(clip.id)}/click`, { method: "POST", keepalive: true }).catch(() => {});
  const close = () => overlay.remove();
  const video = h("video", { src: clip.video, poster: clip.thumbnail, controls: "", autoplay: "",
    playsinline: "", class: "explain-video" });
  video.muted = true; // autoplay is allowed muted; the controls unmute
  const overlay = h("div", { class: "explain-player", role: "dialog", "aria-label": clip.title },
    video, h("button", { type: "button", class: "explain-close", onclick: close }, t("explain.close")));
  document.body.append(overlay);
}

function strip(product, clips) {
  return h("div", { class: "explains", dataset: { product } },
    h("span", { class: "explains-label" }, t("explain.strip")),
    clips.map((clip, i) => h("button", { type: "button", class: "explain-thumb", dataset: { clip: clip.id },
      "aria-label": t("explain.play", { n: i + 1 }), onclick: () => play(clip) },
    h("img", { src: clip.thumbnail, alt: "", loading: "lazy" }),
    h("span", { class: "explain-len" }, `${Math.round(clip.duration)}″`))));
}

export function wireExplains(channel, room) {
  const dock = $("#dock");
  const draw = async () => {
    const product = channel.model.cards.product;
    const name = product && product.name;
    const old = dock.querySelector(".explains");
    if (!name) { if (old) old.remove(); return; }
    if (old && old.dataset.product === name && old.dataset.drawn === String(cache.get(name)?.length)) return;
    const clips = await load(room, name);
    const now = channel.model.cards.product;
    if (!Array.isArray(clips) || !now || now.name !== name) return;
    const again = dock.querySelector(".explains");
    if (again) again.remove();
    if (!clips.length) return;
    const row = strip(name, clips);
    row.dataset.drawn = String(clips.length);
    dock.append(row);
  };
  new MutationObserver(() => {
    if (!dock.querySelector(".explains")) draw();
  }).observe(dock, { childList: true });
  channel.on("event", (ev) => {
    if (ev.t === "clip_ready" && ev.clip && ev.clip.kind === "explain" && ev.clip.product) {
      load(room, ev.clip.product, true).then(() => { const old = dock.querySelector(".explains"); if (old) old.remove(); draw(); });
    }
  });
  draw();
}
