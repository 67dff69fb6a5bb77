// The host console's lucky-draw sheet (福袋): open one with a prize, winners, an entry
// task and a duration; watch the entrants come in; draw (开奖) once, by a tap or by
// itself when entry closes; the winners are listed with their nicknames. Also the
// reservation count (预约) of the room.
import { t } from "/static/i18n.js";
import { $, fill, h, toast, clock } from "/static/room.js";
import { nameOf } from "/static/session.js";
import { act, channel, room, token } from "/static/hostctx.js";

let latest = null;
const autoRolled = new Set(); // draws this console drew by itself when entry closed

async function load() {
  // no-store: the list is cacheable for 2 s, and the console must see the draw it just opened
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/draws`, { cache: "no-store" });
  if (res.ok) latest = (await res.json()).draws[0] || null;
  render();
}

function render() {
  const box = $("#draws");
  if (!latest) { fill(box, h("p", { class: "muted" }, t("host.draw.none"))); return; }
  const left = latest.closes_at - Date.now() / 1000;
  const items = [h("p", {}, h("b", {}, latest.prize), " · ", t("draw.count", { n: latest.entrants, k: latest.winners }))];
  if (latest.status === "drawn") {
    items.push(h("p", {}, t("host.draw.winners")),
      h("ol", { class: "draw-list", id: "draw-winners" }, (latest.won || []).map((u) => h("li", {}, nameOf(u)))));
  } else {
    // Entry closed: draw at once, as platforms do (a second console drawing too is harmless).
    if (left <= 0 && !autoRolled.has(latest.draw)) {
      autoRolled.add(latest.draw);
      setTimeout(() => roll(null), 0);
    }
    items.push(h("p", { class: "muted" }, left > 0 ? t("draw.left", { left: clock(left) }) : t("draw.waiting")),
      h("button", { type: "button", id: "draw-roll", onclick: (e) => roll(e.currentTarget) }, t("host.draw.roll")));
  }
  fill(box, ...items);
}

async function roll(button) {
  await act(button, "draw_roll", { draw: latest.draw }, (ack) => {
    latest = ack;
    toast(t("host.draw.rolled"), "ok");
    render();
  });
}

async function open(event) {
  event.preventDefault();
  const task = $("#draw-task").value;
  const fields = { prize: $("#draw-prize").value.trim(), winners: Number($("#draw-winners-n").value),
    duration_s: Number($("#draw-duration").value), task };
  if (task === "comment") fields.phrase = $("#draw-phrase").value.trim();
  if (task === "watch") fields.minutes = Number($("#draw-minutes").value);
  await act($("#draw-open"), "draw_open", fields, () => { toast(t("host.draw.opened"), "ok"); load(); });
}

function syncTask() {
  const task = $("#draw-task").value;
  $("#draw-phrase-row").hidden = task !== "comment";
  $("#draw-minutes-row").hidden = task !== "watch";
}

async function reservations() {
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/reservations`,
    { headers: { Authorization: `Bearer ${token}` } });
  if (res.ok) $("#stat-reserved").textContent = String((await res.json()).count);
}

export function wireDraws() {
  $("#draw-form").addEventListener("submit", open);
  $("#draw-task").addEventListener("change", syncTask);
  syncTask();
  channel.on("snapshot", load);
  channel.on("event", (ev) => { if (ev.t === "draw_opened" || ev.t === "draw_drawn") load(); });
  setInterval(() => { if (latest && latest.status !== "drawn") load(); }, 3000);
  reservations();
  setInterval(reservations, 30_000);
}

export const renderDraws = render;
