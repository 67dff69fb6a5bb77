// The share officer's page (/o/{room}): their referral link and its QR code
// (qrcode from npm), the room's highlight clips to forward, their earnings and
// referrals, and the live leaderboard. Same identity as the viewer page on this
// device (the link's token, or the guest session), so earnings stay theirs.
import QRCode from "/static/vendor/qrcode.js";
import { RoomChannel } from "/static/channel.js";
import { roomId, withToken } from "/static/boot.js";
import { labelPage, t } from "/static/i18n.js";
import { keepSession, learnNames, nameOf, openSession } from "/static/session.js";
import {
  $, banner, bindChannel, copyText, errorText, fetchRoom, fill, h, leaderboardList, roomErrorText,
  showBadge, showMeta, toast, yuan,
} from "/static/room.js";

const REFRESH_MS = 5000;
/** A shop's receipt confirms commission without a room event: while some of it is
 * pending, the page asks again this often, so 待确认 turns 已到账 without a reload. */
const PENDING_MS = 10000;
const room = roomId();
let channel = null;
let session = null;
const ui = { officer: null, needBuy: false, clips: null, asked: 0, later: null };
const me = () => (channel && channel.model.you ? channel.model.you.user : null);

function roomLink(code) {
  return `${location.origin}/r/${encodeURIComponent(room)}?ref=${encodeURIComponent(code)}`;
}

async function drawQr(canvas, url) {
  try {
    await QRCode.toCanvas(canvas, url, { width: 200, margin: 1, errorCorrectionLevel: "M" });
  } catch (err) {
    console.info("livecore: no QR code", err.message);
  }
}

function linkRow(url, label, id) {
  return h("div", {}, h("label", {}, label),
    h("div", { class: "link-row" },
      h("input", { id, value: url, readonly: true, "aria-label": label, onfocus: (e) => e.target.select() }),
      h("button", { type: "button", class: "secondary small", onclick: async () => {
        toast(await copyText(url) ? t("copied") : t("copy.manual"), "ok");
      } }, t("copy"))));
}

function renderMe() {
  const box = $("#me");
  const o = ui.officer;
  if (!o) {
    fill(box, h("h2", {}, t("officer.title")),
      h("p", {}, t("officer.intro")),
      ui.needBuy ? h("p", { class: "note-warn", id: "need-buy" }, t("officer.need_buy")) : null,
      h("div", { class: "actions" },
        ui.needBuy
          ? h("a", { class: "button", href: backLink() }, t("officer.back"))
          : h("button", { type: "button", id: "officer-apply", onclick: apply }, t("officer.apply"))));
    return;
  }
  const url = roomLink(o.code);
  const canvas = h("canvas", { id: "qr", width: 200, height: 200, role: "img", "aria-label": t("officer.qr") });
  const share = navigator.share
    ? h("button", { type: "button", onclick: () => navigator.share({ title: document.title,
      text: t("officer.share.text", { store: (channel.model.meta || {}).store || "" }), url }).catch(() => {}) },
    t("officer.share"))
    : null;
  fill(box,
    h("div", { class: "kpis" },
      h("div", { class: "kpi" }, h("b", { id: "officer-earned", class: "money" }, yuan(o.earned_cents || 0)), h("span", {}, t("officer.earned")),
        h("small", { class: "muted", id: "officer-split" },
          t("officer.split", { pending: yuan(o.pending_cents || 0), confirmed: yuan(o.confirmed_cents || 0) }))),
      h("div", { class: "kpi" }, h("b", { id: "officer-referrals" }, String(o.referrals ?? 0)), h("span", {}, t("officer.referrals"))),
      h("div", { class: "kpi" }, h("b", {}, o.rank ? `#${o.rank}` : "—"), h("span", {}, t("officer.rank"))),
      h("div", { class: "kpi" }, h("b", { class: "code", id: "officer-code" }, o.code), h("span", {}, t("officer.code")))),
    h("div", { class: "qr" }, canvas, h("p", { class: "muted" }, t("officer.qr"))),
    linkRow(url, t("officer.link"), "officer-link"),
    h("div", { class: "actions" }, share,
      h("button", { type: "button", class: "ghost", id: "officer-refresh", onclick: refresh }, t("officer.refresh"))),
    session && session.guest ? h("p", { class: "muted" }, t("officer.payout")) : null,
    channel.model.referredBy ? h("p", { class: "muted" }, t("officer.referred", { who: nameOf(channel.model.referredBy) })) : null);
  drawQr(canvas, url);
}

async function apply() {
  try {
    const ack = await channel.request("officer_apply");
    toast(t(ack.new ? "officer.welcome" : "officer.already"), "ok");
    await refresh();
  } catch (err) {
    if (err.code === "not_a_buyer") { ui.needBuy = true; renderMe(); }
    toast(errorText(err));
  }
}

async function refresh() {
  ui.asked = Date.now();
  try {
    const { t: _t, id, ...officer } = await channel.request("officer_me");
    ui.officer = officer;
    ui.needBuy = false;
  } catch (err) {
    if (err.code === "not_a_buyer") ui.needBuy = !channel.model.officer;
    else if (err.code !== "disconnected") toast(errorText(err));
  }
  renderMe();
  if (ui.officer && ui.officer.pending_cents > 0 && !ui.later) {
    ui.later = setTimeout(() => { ui.later = null; refresh(); }, PENDING_MS);
  }
}

function renderLeaderboard() {
  const rows = channel.model.leaderboard || [];
  learnNames(room, rows.map(([u]) => u), renderLeaderboard);
  leaderboardList($("#leaderboard"), rows, me(), nameOf);
  const mine = rows.find(([u]) => u === me());
  if (ui.officer && mine && mine[1] !== ui.officer.earned_cents) {
    ui.officer.earned_cents = mine[1]; // the leaderboard carries our total: show it at once
    renderMe();
  }
  // Referrals and rank come from officer_me: asked again, at most every 5 s.
  if (ui.officer && !ui.later) {
    ui.later = setTimeout(() => { ui.later = null; refresh(); },
      Math.max(0, REFRESH_MS - (Date.now() - ui.asked)));
  }
}

/** The clip library (GET /api/rooms/{room}/clips), when the server has one. */
async function loadClips() {
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/clips`);
    if (!res.ok) { ui.clips = null; return renderClips(); }
    const body = await res.json();
    const items = Array.isArray(body) ? body : body.clips || body.items || [];
    ui.clips = items.filter((c) => c && typeof c.share === "string");
  } catch { ui.clips = null; }
  renderClips();
}

function clipShareUrl(clip) {
  const base = clip.share;
  const url = new URL(base, location.origin);
  if (ui.officer && !url.searchParams.has("ref")) url.searchParams.set("ref", ui.officer.code);
  return url.toString();
}

function renderClips() {
  const box = $("#clips");
  if (!ui.clips || !ui.clips.length) { fill(box, h("p", { class: "muted" }, t("officer.clips.none"))); return; }
  fill(box, h("div", { class: "clips" }, ui.clips.slice(0, 20).map((clip) => h("div", { class: "clip" },
    clip.thumbnail ? h("img", { src: clip.thumbnail, alt: clip.title || "", loading: "lazy",
      onerror: (e) => e.target.remove() }) : null,
    h("p", {}, clip.title || t("officer.clips")),
    h("div", { class: "row" },
      h("a", { class: "button secondary small", href: clipShareUrl(clip), target: "_blank", rel: "noopener" }, t("officer.clip.play")),
      h("button", { type: "button", class: "ghost small", onclick: async () => {
        toast(await copyText(clipShareUrl(clip)) ? t("copied") : t("copy.manual"), "ok");
      } }, t("officer.clip.copy")))))));
}

function backLink() {
  return withToken(`/r/${encodeURIComponent(room)}`);
}

function renderState() {
  const m = channel.model;
  const live = m.meta && m.streams.includes(m.meta.host);
  showBadge(live ? "live" : m.meta && m.meta.status !== "scheduled" ? "ended" : "scheduled");
}

async function start() {
  labelPage(() => { renderMe(); renderClips(); if (channel) { renderLeaderboard(); renderState(); } });
  $("#back").href = backLink();
  showBadge("scheduled");
  fetchRoom(room).then(showMeta).catch((err) => banner(roomErrorText(err)));
  loadClips();
  try {
    session = await openSession(room);
  } catch (err) {
    banner(err.code === "token_missing" ? t("guest.closed") : errorText(err));
    return;
  }
  channel = new RoomChannel({ room, token: session.token });
  window.livecore = { channel, session };
  bindChannel(channel, {
    meta: () => { showMeta(channel.model.meta); renderState(); },
    streams: renderState,
    leaderboard: renderLeaderboard,
    officer: () => { if (channel.model.officer) { ui.officer = channel.model.officer; renderMe(); } },
  });
  keepSession(room, session, channel);
  channel.on("snapshot", (s) => {
    banner("");
    if (s.officer) ui.officer = s.officer;
    renderMe();
    if (s.officer) refresh();
  });
  channel.on("event", (ev) => { if (ev.t === "clip_ready") loadClips(); });
  channel.connect();
  renderLeaderboard();
  setInterval(loadClips, 30000);
}

start();
