// The host console's highlight clips: the room's clip library (GET
// /api/rooms/{room}/clips), refreshed on `clip_ready` with a toast, each clip
// with its share page and a delete (DELETE /api/rooms/{room}/clips/{clip}).
import { t } from "/static/i18n.js";
import { $, errorText, fill, h, toast } from "/static/room.js";
import { channel, room, token } from "/static/hostctx.js";

const SHOWN = 20;
let clips = [];

export async function loadClips() {
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/clips`);
    if (!res.ok) return;
    const body = await res.json();
    clips = Array.isArray(body.clips) ? body.clips.slice(0, SHOWN) : [];
  } catch { return; }
  renderClips();
}

function seconds(clip) {
  const d = Number(clip.duration || clip.duration_s || 0);
  return d > 0 ? ` · ${Math.round(d)}s` : "";
}

export function renderClips() {
  const list = $("#host-clips");
  if (!list) return;
  if (!clips.length) { fill(list, h("li", { class: "muted" }, t("host.clips.none"))); return; }
  fill(list, clips.map((clip) => h("li", { dataset: { clip: clip.id } },
    clip.thumbnail ? h("img", { src: clip.thumbnail, alt: "", loading: "lazy" }) : null,
    h("div", { class: "grow" },
      h("b", {}, clip.title || t("host.clips")),
      h("div", { class: "muted" }, `${clip.product || ""}${seconds(clip)}`),
      h("div", { class: "clip-actions" },
        clip.share ? h("a", { class: "button secondary small", href: clip.share, target: "_blank", rel: "noopener" },
          t("host.clips.open")) : null,
        h("button", { type: "button", class: "danger small clip-delete", onclick: (e) => remove(e.currentTarget, clip) },
          t("host.clips.delete")))))));
}

async function remove(button, clip) {
  button.disabled = true;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/clips/${encodeURIComponent(clip.id)}`,
      { method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { toast(errorText(body)); return; }
    clips = clips.filter((c) => c.id !== clip.id);
    renderClips();
    toast(t("host.clips.deleted"), "ok");
  } finally {
    button.disabled = false;
  }
}

export function wireClips() {
  channel.on("event", (ev) => {
    if (ev.t !== "clip_ready") return;
    toast(t("host.clips.ready"), "ok");
    loadClips();
  });
  loadClips();
}
