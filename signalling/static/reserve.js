// The reservation page (/y/{room}): the room's time, its products and a QR code of
// this page's link; reserving needs no account (the guest session); a reserved
// viewer is reminded here once the room goes live, and may add an .ics to a calendar.
import QRCode from "/static/vendor/qrcode.js";
import { roomId } from "/static/boot.js";
import { labelPage, t, errorSentence, lang } from "/static/i18n.js";
import { openSession } from "/static/session.js";

const room = roomId();
const $ = (id) => document.getElementById(id);
const api = `/api/rooms/${encodeURIComponent(room)}`;
let session = null;
let info = null;
let count = 0;
let reserved = false;

function when(iso) {
  const d = new Date(iso);
  return d.toLocaleString(lang() === "zh" ? "zh-CN" : "en", { dateStyle: "medium", timeStyle: "short" });
}

function render() {
  if (info) {
    $("title").textContent = info.title;
    $("store").textContent = info.store;
    $("starts").textContent = when(info.starts_at);
    $("live").hidden = !(reserved && info.status === "live");
    $("reserve").hidden = reserved || info.status === "ended";
  }
  $("count").textContent = t("reserve.count", { n: count });
  $("done").hidden = !reserved;
}

function fail(err) {
  $("error").textContent = errorSentence(err);
  $("error").hidden = false;
}

async function call(method) {
  if (!session) session = await openSession(room);
  const res = await fetch(`${api}/reservations`, { method, headers: { Authorization: `Bearer ${session.token}` } });
  const body = await res.json();
  if (!res.ok) { fail(body); return; }
  $("error").hidden = true;
  reserved = body.reserved; count = body.count;
  render();
}

async function refresh() {
  const res = await fetch(api);
  if (!res.ok) { fail(await res.json()); return; }
  info = await res.json();
  render();
}

async function products() {
  const res = await fetch(`${api}/groupbuys`);
  if (!res.ok) return;
  const body = await res.json();
  const items = (body.groupbuys || []).map((g) => {
    const li = document.createElement("li");
    li.textContent = `${g.product} ¥${(g.price_cents / 100).toFixed(2)}`;
    return li;
  });
  $("products").replaceChildren(...items);
}

async function main() {
  labelPage(render);
  $("enter").href = `/r/${encodeURIComponent(room)}`;
  $("ics").href = `${api}/calendar.ics`;
  $("reserve").addEventListener("click", () => call("POST").catch(fail));
  $("cancel").addEventListener("click", () => call("DELETE").catch(fail));
  await QRCode.toCanvas($("qr"), location.origin + location.pathname, { width: 200, margin: 1 });
  await refresh();
  await products();
  try {
    session = await openSession(room);
    const res = await fetch(`${api}/reservations`, { headers: { Authorization: `Bearer ${session.token}` } });
    if (res.ok) { const body = await res.json(); reserved = body.reserved; count = body.count; }
  } catch { /* guests off: the button still tries */ }
  render();
  document.body.dataset.ready = "1";
  setInterval(() => { if (reserved && info && info.status !== "live") refresh(); }, 10_000);
}

main().catch(fail);
