// Shared by the room pages: small DOM helpers, money and time formatting, toasts,
// the sparkline, copy to clipboard, the room's meta. The link's token and room
// are boot.js's; without a token the viewer pages enter as a guest (session.js).
import { roomId } from "/static/boot.js";
import { errorSentence, t } from "/static/i18n.js";

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/**
 * Build an element: h("button", {class: "x", onclick: fn, dataset: {o: 3}}, "text", child…).
 * Strings become text nodes (never HTML); null/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    // Through the CSSOM: the pages' CSP refuses style attributes (style-src-attr).
    else if (k === "style") el.style.cssText = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Integer cents (分) → "¥12.80" (no floats involved). */
export function yuan(cents) {
  const c = Math.round(Number(cents) || 0);
  const sign = c < 0 ? "-" : "";
  const a = Math.abs(c);
  return `${sign}¥${Math.floor(a / 100)}.${String(a % 100).padStart(2, "0")}`;
}

/** "12.8" or "12.80" 元 → 1280 cents; null when not a price. */
export function centsFromYuan(text) {
  const m = /^\s*(\d{1,9})(?:[.,](\d{0,2}))?\s*$/.exec(String(text));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

/** Seconds → "1:05:09" / "4:05". */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

export const now = () => Date.now() / 1000;

export function timeOfDay(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

export const ROLE_LABEL = { host: "role.host", koc: "role.koc", officer: "role.officer" };

/** Header: title and store (the live badge is the page's: it tracks the stream). */
export function showMeta(meta) {
  if (!meta) return;
  document.title = `${meta.title} · ${meta.store}`;
  const title = $("#title");
  if (title) { delete title.dataset.i18n; title.textContent = meta.title; }
  const store = $("#store");
  if (store) store.textContent = meta.store;
}

/** The live badge: "live" | "scheduled" | "ended". */
export function showBadge(state) {
  const el = $("#room-status");
  if (!el) return;
  el.dataset.status = state;
  el.textContent = t(state);
}

/** The room's public state over HTTP (shown before the channel is up). */
export async function fetchRoom(id = roomId()) {
  const res = await fetch(`/api/rooms/${encodeURIComponent(id)}`);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body.message || res.statusText), body);
  return body;
}

/** Community names by id, put into `names` (GET /api/communities); without them ids are shown. */
export async function loadCommunityNames(names) {
  try {
    const res = await fetch("/api/communities");
    if (res.ok) for (const c of (await res.json()).communities || []) names[c.id] = c.name;
  } catch { /* ids are shown instead */ }
}

/**
 * The dashboards' loop: GET `url` with the link's token now and every `everyMs`, `render`
 * each answer; a refusal or a lost network is said in the banner. A first refusal the
 * node will repeat (4xx: a wrong or expired token) stops it before it starts.
 */
export async function pollWithToken(url, token, render, everyMs) {
  const once = async () => {
    try {
      const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) { banner(errorText(body)); return res.status >= 500; }
      banner("");
      render(body);
      return true;
    } catch {
      banner(errorText({ code: "network" }));
      return true;
    }
  };
  if (await once()) setInterval(once, everyMs);
}

/** A failed fetchRoom() for a person. */
export function roomErrorText(err) {
  if (err && err.code === "room_not_found") return t("room.missing");
  return t("room.loadfail");
}

// -- toasts -------------------------------------------------------------------

let toastTimer = null;

/** A short message under the header. It never takes taps (pointer-events: none)
 * and is fully hidden (visibility) when not shown, so it can never cover a button. */
export function toast(message, kind = "error") {
  let box = $("#toast");
  if (!box) {
    box = h("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.textContent = message;
  box.dataset.kind = kind;
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), kind === "error" ? 4000 : 2500);
}

/** A human sentence for a refused request (ChannelError, HTTP error body). */
export function errorText(err) {
  return errorSentence(err);
}

// -- misc ------------------------------------------------------------------------

/** Copy text (clipboard API, falling back to a selected textarea). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

const SVG = "http://www.w3.org/2000/svg";

/**
 * A small inline SVG line of [[time, value], …] (sorted by time), with the
 * last point marked; `label` names it for screen readers.
 */
export function sparkline(points, { width = 160, height = 40, label = "" } = {}) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const pts = [...points].filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]))
    .sort((a, b) => a[0] - b[0]);
  if (pts.length === 0) return svg;
  const pad = 3;
  const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
  const vs = pts.map((p) => p[1]);
  let lo = Math.min(...vs), hi = Math.max(...vs);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const x = (t) => (t1 === t0 ? width / 2 : pad + ((t - t0) / (t1 - t0)) * (width - 2 * pad));
  const y = (v) => pad + (1 - (v - lo) / (hi - lo)) * (height - 2 * pad);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "2");
  line.setAttribute("stroke-linejoin", "round");
  line.setAttribute("stroke-linecap", "round");
  svg.append(line);
  const last = pts[pts.length - 1];
  const dot = document.createElementNS(SVG, "circle");
  dot.setAttribute("cx", x(last[0]).toFixed(1));
  dot.setAttribute("cy", y(last[1]).toFixed(1));
  dot.setAttribute("r", "3");
  dot.setAttribute("fill", "currentColor");
  svg.append(dot);
  return svg;
}

/** "3.9" with at most one decimal. */
export function num(v) {
  return Number.isInteger(v) ? String(v) : Number(v).toFixed(1);
}

/** Connection status → header dot (text only while not connected). */
export function showConnection(el, { status, delay }) {
  if (!el) return delay;
  const label = t(`conn.${status}`);
  el.dataset.status = status;
  el.title = label;
  el.setAttribute("aria-label", label);
  const text = el.querySelector(".conn-text");
  if (text) text.textContent = status === "live" || status === "connecting" ? "" : label;
  return delay;
}

/** Why a channel closed for good, for a person. */
export function closeText(code, reason) {
  if (code === 4001 || code === 4005) { // 4005: the token was revoked while connected
    const why = String(reason || "").split(/[\s:]/)[0];
    return why && why.startsWith("token_") ? errorSentence(why) : t("close.4001");
  }
  if (code === 4004 || code === 4029) return t(`close.${code}`);
  return t("close.other");
}

/** Sync a comment list with the model (newest at the bottom); keeps the reader's
 * scroll position unless they were at the bottom or `mine` just commented. */
export function syncComments(list, comments, make, mine = null) {
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const want = new Set(comments.map((c) => c.o));
  for (const li of [...list.children]) if (!want.has(Number(li.dataset.o))) li.remove();
  let cursor = list.firstElementChild;
  let mineAdded = false;
  for (const c of comments) {
    if (cursor && Number(cursor.dataset.o) === c.o) { cursor = cursor.nextElementSibling; continue; }
    list.insertBefore(make(c), cursor);
    if (mine && c.user === mine) mineAdded = true;
  }
  if (nearBottom || mineAdded) list.scrollTop = list.scrollHeight;
}

/** The share officers' top 10, money in 元. */
export function leaderboardList(list, rows, mine = null, name = (u) => u) {
  if (!rows || !rows.length) {
    fill(list, h("li", { class: "muted" }, t("lb.none")));
    return;
  }
  fill(list, rows.slice(0, 10).map(([who, cents], i) =>
    h("li", { class: who === mine ? "me" : null },
      h("span", {}, h("span", { class: "rank" }, `${i + 1}.`), who === mine ? `${name(who)}（${t("me")}）` : name(who)),
      h("span", { class: "money" }, yuan(cents)))));
}

// The banner above the stage: a lasting message (empty text hides it).
export function banner(text) {
  const el = document.querySelector("#banner");
  el.textContent = text;
  el.hidden = !text;
}

// What both pages do with a channel: render the model parts that changed
// (each renderer once), show the connection state, toast refusals, and
// banner a final close.
export function bindChannel(channel, render) {
  channel.on("change", (parts) => {
    const done = new Set();
    for (const part of parts) {
      const fn = render[part];
      if (fn && !done.has(fn)) { done.add(fn); fn(); }
    }
  });
  channel.on("status", (s) => showConnection(document.querySelector("#conn"), s));
  // A ?ref= code nobody owns (or one's own) is not the shopper's problem: no toast.
  const quiet = new Set(["unknown_referrer", "self_referral"]);
  channel.on("error", (e) => { if (!quiet.has(e.code)) toast(errorText(e)); });
  channel.on("fatal", ({ code, reason }) => banner(closeText(code, reason)));
}

// Countdowns: every element with data-deadline (Unix seconds) shows m:ss left.
export function tickDeadlines() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    const left = Number(el.dataset.deadline) - now();
    el.textContent = left > 0 ? clock(left) : "0:00";
  }
}
