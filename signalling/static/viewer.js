// The viewer page (/r/{room}): a phone-first live-commerce layout. The video
// fills the screen (letterboxed, never cropped), comments float over it, the
// pinned product and the compound's group buy (progress, countdown, 参团) stay
// at the bottom within thumb reach; polls float as an overlay; the
// traceability card, the testimonial wall, the compound finder and the
// nickname open in a bottom sheet. A shared link needs no token (guest entry).
import { RoomChannel } from "/static/channel.js";
import { mountStage } from "/static/stage.js";
import { applyLabels, langButton, onLang, t } from "/static/i18n.js";
import {
  keepFresh, knowName, learnNames, nameOf, openSession, renewNow, savedName, setNickname,
} from "/static/session.js";
import {
  $, $$, ROLE_LABEL, banner, bindChannel, clock, closeText, copyText, errorText, fetchRoom, fill, h,
  now, num, queryParam, roomErrorText, roomId, showBadge, showMeta, sparkline, syncComments,
  tickDeadlines, toast, yuan,
} from "/static/room.js";

const LIKE_EVERY_MS = 300;
const LIKE_MAX = 50;
const OVERLAY_COMMENTS = 60;
const WALL_MAX = 30;
const SENSOR_UNITS = { c: "°C", pct: "%", lux: "lx", ppm: "ppm" };

const room = roomId();
const inviter = queryParam("inviter");
let session = null;
let channel = null;
let stage = null;

const ui = {
  likesShown: 0, likesPending: 0, likeTimer: null,
  votes: {}, qty: {}, nearby: null, pollHidden: null,
  wall: [], sheet: null, everLive: false, replay: null, replayTried: 0, hls: false,
};

const me = () => (channel && channel.model.you ? channel.model.you.user : null);
const storeKey = () => `livecore:orders:${room}:${me()}`;

function myOrders() {
  try { return JSON.parse(localStorage.getItem(storeKey()) || "{}"); } catch { return {}; }
}
function saveOrder(gb, qty) {
  const orders = myOrders();
  if (qty) orders[gb] = qty; else delete orders[gb];
  try { localStorage.setItem(storeKey(), JSON.stringify(orders)); } catch { /* private mode */ }
}

// -- header: badge, counts, ended state -----------------------------------------

function hostLive() {
  const m = channel.model;
  return !!(m.meta && m.streams.includes(m.meta.host));
}

function roomState() {
  const m = channel.model;
  if (hostLive()) return "live";
  const status = m.meta && m.meta.status;
  if (status === "ended" || ((status === "live" || ui.everLive) && !hostLive())) return "ended";
  return "scheduled";
}

function renderState() {
  if (!channel.model.meta) return;
  const state = roomState();
  if (state === "live") ui.everLive = true;
  showBadge(state);
  document.body.dataset.state = state;
  const ended = $("#ended");
  ended.hidden = state !== "ended";
  const note = $("#stage-note");
  note.hidden = state !== "scheduled" && !(state === "live" && !playing());
  $("#stage-note-text").dataset.i18n = state === "scheduled" ? "stage.waiting" : "stage.connecting";
  $("#stage-note-text").textContent = t($("#stage-note-text").dataset.i18n);
  if (state === "ended") lookForReplay();
  const replay = $("#replay");
  replay.hidden = !(state === "ended" && ui.replay);
  renderSound();
}

function renderSound() {
  const v = $("#player");
  $("#sound").hidden = !(v.muted && !v.paused && v.readyState >= 2 && roomState() !== "ended");
}

function playing() {
  const v = $("#player");
  return !!(v.srcObject || v.currentSrc) && v.readyState >= 2;
}

/** The room's public state says whether a replay exists (`replay_url`); asked again now and then. */
async function lookForReplay() {
  if (ui.replay || Date.now() - ui.replayTried < 15000) return;
  ui.replayTried = Date.now();
  try {
    const meta = await fetchRoom(room);
    if (meta && typeof meta.replay_url === "string" && meta.replay_url) {
      ui.replay = meta.replay_url;
      renderState();
    }
  } catch { /* no replay yet */ }
}

function playReplay() {
  const v = $("#player");
  v.srcObject = null;
  v.src = ui.replay;
  v.controls = true;
  v.muted = false;
  v.play().catch(() => {});
  $("#ended").hidden = true;
}

function renderCounts() {
  const m = channel.model;
  ui.likesShown = Math.max(ui.likesShown, m.likes);
  $("#viewer-count").textContent = m.viewers;
  $("#like-count").textContent = ui.likesShown;
}

// -- comments -------------------------------------------------------------------

function commentItem(c) {
  const role = ROLE_LABEL[c.role];
  return h("li", { dataset: { o: c.o, user: c.user }, class: c.user === me() ? "mine" : null },
    role ? h("span", { class: `role ${c.role}` }, t(role)) : null,
    h("span", { class: "who" }, c.user === me() ? t("me") : nameOf(c.user)),
    h("span", { class: "text" }, c.text));
}

function renderComments() {
  const list = $("#comments");
  const shown = channel.model.comments.slice(-OVERLAY_COMMENTS);
  syncComments(list, shown, commentItem, me());
  learnNames(room, shown.map((c) => c.user), relabelComments);
  const until = channel.model.muted[me()];
  const input = $("#comment-text");
  if (until && until > now()) {
    input.placeholder = t("comment.placeholder.muted", { time: clock(until - now()) });
  } else input.placeholder = t("comment.placeholder");
}

function relabelComments() {
  for (const li of $$("#comments li")) {
    const who = li.querySelector(".who");
    if (who) who.textContent = li.dataset.user === me() ? t("me") : nameOf(li.dataset.user);
  }
}

async function sendComment(ev) {
  ev.preventDefault();
  const input = $("#comment-text");
  const text = input.value.trim();
  if (!text) return;
  const button = $("#send");
  button.disabled = true;
  const cid = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  try {
    await channel.request("comment", { text, cid });
    if (input.value.trim() === text) input.value = "";
  } catch (err) {
    toast(errorText(err));
  } finally {
    button.disabled = false;
  }
}

// -- likes ----------------------------------------------------------------------

function tapLike() {
  ui.likesPending += 1;
  ui.likesShown += 1;
  renderCounts();
  const heart = $("#like");
  heart.classList.remove("pop");
  void heart.offsetWidth;
  heart.classList.add("pop");
  if (!ui.likeTimer) ui.likeTimer = setTimeout(flushLikes, LIKE_EVERY_MS);
}

function flushLikes() {
  ui.likeTimer = null;
  if (!ui.likesPending) return;
  const n = Math.min(ui.likesPending, LIKE_MAX);
  if (channel.send("like", { n })) ui.likesPending -= n;
  if (ui.likesPending) ui.likeTimer = setTimeout(flushLikes, LIKE_EVERY_MS);
}

// -- pinned question, poll overlay ------------------------------------------------

function renderQuestion() {
  const q = channel.model.question;
  const card = $("#question");
  card.hidden = !q || !!q.answered;
  if (!q) return;
  $("#question-text").textContent = `${nameOf(q.user)}：${q.text}`;
}

function currentPoll() {
  const polls = [...channel.model.polls.values()];
  const open = polls.filter((p) => p.status === "open" && !(p.closes_at && p.closes_at <= now()));
  return open.length ? open[open.length - 1] : null;
}

function renderPoll() {
  const card = $("#poll");
  const p = currentPoll();
  card.hidden = !p || ui.pollHidden === (p && p.poll);
  if (!p) return;
  const counts = p.counts || p.options.map(() => 0);
  const total = counts.reduce((a, b) => a + b, 0);
  const canVote = channel.model.you && channel.model.you.role !== "host";
  const key = `${p.poll}:${canVote}:${p.options.length}:${document.documentElement.lang}`;
  if (card.dataset.key !== key) {
    card.dataset.key = key;
    card.dataset.poll = p.poll;
    fill(card,
      h("div", { class: "poll-head" },
        h("span", { class: "state open" }, t("poll")),
        p.closes_at ? h("small", { dataset: { deadline: p.closes_at } }, "") : null,
        h("button", { type: "button", class: "ghost small poll-hide", onclick: () => { ui.pollHidden = p.poll; renderPoll(); } },
          t("poll.hide"))),
      h("p", { class: "q-text" }, p.question),
      h("div", { class: "options" }, p.options.map((text, i) =>
        h("button", { type: "button", class: "option", disabled: !canVote, dataset: { i },
          onclick: () => vote(p.poll, i) },
        h("span", { class: "bar" }), h("span", { class: "label" }, text), h("span", { class: "pct" }, "")))),
      h("p", { class: "total" }, ""));
  }
  $$(".option", card).forEach((btn, i) => {
    const pct = total ? Math.round((counts[i] / total) * 100) : 0;
    btn.querySelector(".bar").style.width = `${pct}%`;
    btn.querySelector(".pct").textContent = `${pct}%`;
    btn.classList.toggle("chosen", ui.votes[p.poll] === i);
    btn.setAttribute("aria-pressed", ui.votes[p.poll] === i ? "true" : "false");
  });
  card.querySelector(".total").textContent = t("poll.votes", { n: total });
  tickDeadlines();
}

async function vote(poll, option) {
  const before = ui.votes[poll];
  ui.votes[poll] = option;
  renderPoll();
  try {
    await channel.request("vote", { poll, option });
  } catch (err) {
    ui.votes[poll] = before;
    renderPoll();
    toast(errorText(err));
  }
}

// -- the dock: pinned product + the compound's group buy ------------------------------

function myGroup(spec) {
  if (spec.scope === "room") return "room";
  const m = channel.model;
  return (m.community && m.community.id) || (m.you && m.you.community) || null;
}

function tierPrice(spec, n) {
  let discount = 0;
  for (const [members, cents] of spec.tiers || []) if (n >= members) discount = cents;
  return spec.price_cents - discount;
}

function gbState(spec) {
  const group = myGroup(spec);
  const state = group && channel.model.groups[spec.gb] ? channel.model.groups[spec.gb][group] : null;
  const n = state ? state.n : 0;
  const target = (state && state.target) || spec.target;
  const missing = state && state.missing != null ? state.missing : Math.max(0, target - n);
  const unit = state && state.unit_cents != null ? state.unit_cents : tierPrice(spec, n);
  let status = state ? state.s : "open";
  if (spec.closed && status === "open") status = "closed";
  return { group, state, n, target, missing, unit, status };
}

function featured() {
  const specs = [...channel.model.groupbuys.values()];
  const open = specs.filter((s) => !s.closed);
  return open.length ? open[open.length - 1] : specs[specs.length - 1] || null;
}

function productThumb(name, url) {
  const letter = h("span", { class: "thumb-letter" }, (name || "团").slice(0, 1));
  if (!url) return h("div", { class: "thumb" }, letter);
  return h("div", { class: "thumb" },
    h("img", { src: url, alt: name, loading: "lazy", referrerpolicy: "no-referrer",
      onerror: (e) => { e.target.replaceWith(letter); } }));
}

function countLine(spec, g) {
  const roomWide = spec.scope === "room";
  if (g.status === "formed") return t(roomWide ? "gb.formed.room" : "gb.formed", { n: g.n });
  if (g.status === "failed") return t("gb.failed", { n: g.n, target: g.target });
  if (g.status === "closed") return t("gb.closed");
  return t(roomWide ? "gb.count.room" : "gb.count", { n: g.n, missing: g.missing });
}

function renderDock() {
  const dock = $("#dock");
  const product = channel.model.cards.product;
  const spec = featured();
  const trace = channel.model.cards.trace || Object.keys(channel.model.sensors).length;
  if (!spec && !product) {
    fill(dock, h("p", { class: "dock-empty" }, t("gb.none")));
    dock.dataset.gb = "";
    return;
  }
  const name = spec ? spec.product : product.name;
  const image = product && product.image_url ? product.image_url : null;
  const parts = [];
  if (!spec) {
    parts.push(h("div", { class: "dock-row" }, productThumb(name, image),
      h("div", { class: "dock-main" },
        h("p", { class: "dock-name" }, name),
        h("p", { class: "dock-price" }, h("span", { class: "price" }, yuan(product.price_cents)),
          product.stock === 0 ? h("span", { class: "state failed" }, t("product.soldout"))
            : product.stock != null ? h("span", { class: "muted" }, t("product.stock", { n: product.stock })) : null)),
      trace ? h("button", { type: "button", class: "chip trace-open", onclick: openTrace },
        t("trace.button")) : null));
    fill(dock, parts);
    dock.dataset.gb = "";
    return;
  }
  const g = gbState(spec);
  const joinedQty = myOrders()[spec.gb] || 0;
  const maxQty = spec.max_qty || 5;
  const qty = Math.min(maxQty, ui.qty[spec.gb] || joinedQty || 1);
  ui.qty[spec.gb] = qty;
  const pct = Math.min(100, Math.round((g.n / g.target) * 100));
  const nextTier = (spec.tiers || []).find(([members]) => g.n < members);
  const canJoin = (g.status === "open" || g.status === "formed") && !spec.closed;

  let action;
  if (!g.group) {
    action = h("button", { type: "button", class: "join locate", id: "locate", onclick: () => locate() }, t("gb.locate"));
  } else if (joinedQty && g.status === "open") {
    action = h("div", { class: "dock-act" }, stepper(spec, qty, maxQty),
      qty !== joinedQty
        ? h("button", { type: "button", class: "join", onclick: () => join(spec, qty) }, t("gb.update", { qty }))
        : h("button", { type: "button", class: "join invite", onclick: () => openInvite(spec) }, t("gb.invite")));
  } else if (joinedQty && g.status === "formed") {
    action = h("span", { class: "note-ok" }, t("gb.confirmed", { qty: joinedQty }));
  } else if (canJoin) {
    action = h("div", { class: "dock-act" }, stepper(spec, qty, maxQty),
      h("button", { type: "button", class: "join", onclick: () => join(spec, qty) },
        `${t("gb.join")} ${yuan(g.unit * qty)}`));
  } else action = null;

  const more = channel.model.groupbuys.size > 1
    ? h("button", { type: "button", class: "chip", onclick: openAllGroupbuys }, t("gb.more", { n: channel.model.groupbuys.size }))
    : null;
  fill(dock,
    h("div", { class: "dock-row" }, productThumb(name, image),
      h("div", { class: "dock-main" },
        h("p", { class: "dock-name" }, name),
        h("p", { class: "dock-price" },
          h("span", { class: "price" }, yuan(g.unit)),
          g.unit < spec.price_cents ? h("span", { class: "was" }, yuan(spec.price_cents)) : null,
          h("span", { class: "muted" }, t("gb.each")),
          nextTier ? h("span", { class: "tier-tag" }, t("gb.tier", { n: nextTier[0], cents: yuan(nextTier[1]) })) : null)),
      h("div", { class: "dock-side" },
        trace ? h("button", { type: "button", class: "chip trace-open", onclick: openTrace }, t("trace.button")) : null,
        more)),
    g.group ? h("p", { class: "gb-count" }, countLine(spec, g)) : h("p", { class: "gb-count muted" }, t("gb.locate.hint")),
    h("div", { class: "progress-row" },
      h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(g.target),
        "aria-valuenow": String(g.n) }, h("span", { style: `width:${pct}%` })),
      g.status === "open" && !spec.closed
        ? h("span", { class: "countdown" }, `${t("gb.left")} `, h("span", { dataset: { deadline: spec.deadline } }, clock(spec.deadline - now())))
        : h("span", { class: `state ${g.status}` }, t(`gb.s.${g.status}`))),
    spec.bonus_invites
      ? h("p", { class: g.state && g.state.b ? "bonus on" : "bonus" },
        g.state && g.state.b ? t("gb.bonus.on", { cents: yuan(spec.bonus_cents) })
          : t("gb.bonus", { n: spec.bonus_invites, cents: yuan(spec.bonus_cents) }))
      : null,
    h("div", { class: "dock-foot" },
      joinedQty && g.status === "open" ? h("span", { class: "note-ok" }, t("gb.joined", { qty: joinedQty })) : null,
      joinedQty && g.status === "open" ? h("button", { type: "button", class: "ghost small leave", onclick: () => leave(spec) }, t("gb.leave")) : null,
      action));
  dock.dataset.gb = spec.gb;
  dock.dataset.status = g.status;
  tickDeadlines();
}

function stepper(spec, qty, maxQty) {
  return h("span", { class: "stepper", role: "group" },
    h("button", { type: "button", "aria-label": t("gb.qty.less"), class: "less", disabled: qty <= 1,
      onclick: () => { ui.qty[spec.gb] = Math.max(1, qty - 1); renderDock(); } }, "−"),
    h("output", { class: "qty", "aria-live": "polite" }, String(qty)),
    h("button", { type: "button", "aria-label": t("gb.qty.more"), class: "more", disabled: qty >= maxQty,
      onclick: () => { ui.qty[spec.gb] = Math.min(maxQty, qty + 1); renderDock(); } }, "+"));
}

function groupFromAck(ack) {
  const { t: _t, id, gb, group, ...state } = ack;
  return { gb, group, state };
}

async function join(spec, qty) {
  const fields = { gb: spec.gb, qty };
  if (inviter && inviter !== me() && !myOrders()[spec.gb]) fields.inviter = inviter;
  try {
    let ack;
    try {
      ack = await channel.request("groupbuy_join", fields);
    } catch (err) {
      if (!fields.inviter || !["unknown_referrer", "self_referral"].includes(err.code)) throw err;
      delete fields.inviter; // the inviter is not in our group: join on our own
      ack = await channel.request("groupbuy_join", fields);
    }
    saveOrder(spec.gb, qty);
    const { gb, group, state } = groupFromAck(ack);
    channel.noteGroup(gb, group, state);
    channel.changed("groups");
    toast(t("gb.joined.toast", { qty }), "ok");
  } catch (err) {
    if (err.code === "no_community") renderDock();
    toast(errorText(err));
  }
}

async function leave(spec) {
  try {
    const ack = await channel.request("groupbuy_leave", { gb: spec.gb });
    saveOrder(spec.gb, 0);
    const { gb, group, state } = groupFromAck(ack);
    channel.noteGroup(gb, group, state);
    channel.changed("groups");
    toast(t("gb.left.toast"), "ok");
  } catch (err) {
    toast(err.code === "group_formed" ? t("gb.formed.cannot_leave") : errorText(err));
  }
}

// -- sheets ---------------------------------------------------------------------------

function openSheet(kind, title, body) {
  ui.sheet = kind;
  $("#sheet").dataset.kind = kind;
  $("#sheet-title").textContent = title;
  fill($("#sheet-body"), body);
  $("#sheet").hidden = false;
  $("#sheet-backdrop").hidden = false;
}

function closeSheet() {
  ui.sheet = null;
  $("#sheet").hidden = true;
  $("#sheet-backdrop").hidden = true;
}

function rerenderSheet() {
  if (ui.sheet === "trace") openTrace();
  else if (ui.sheet === "wall") openWall();
  else if (ui.sheet === "community") openCommunity();
  else if (ui.sheet === "groupbuys") openAllGroupbuys();
  else if (ui.sheet === "nick") openNick();
  else if (ui.sheet === "invite") closeSheet();
}

function sensorLabel(kind) {
  const key = `sensor.${kind}`;
  const label = t(key);
  if (label !== key) return label;
  return t("sensor.other");
}

function sensorUnit(kind) {
  const suffix = String(kind).split("_").pop();
  return SENSOR_UNITS[suffix] || "";
}

function readingsBlock(points, label, unit) {
  const values = points.map((p) => p[1]);
  const last = values[values.length - 1];
  return h("div", { class: "readings" },
    sparkline(points, { width: 180, height: 44, label }),
    h("div", {},
      h("div", {}, h("b", { class: "reading-now" }, `${num(last)}${unit}`), " ", h("span", { class: "muted" }, t("trace.latest"))),
      h("div", { class: "muted" }, t("trace.range", { lo: `${num(Math.min(...values))}${unit}`, hi: `${num(Math.max(...values))}${unit}` }))));
}

function openTrace() {
  const trace = channel.model.cards.trace;
  const parts = [];
  if (trace) {
    parts.push(h("dl", { class: "kv" },
      h("dt", {}, t("trace.batch")), h("dd", {}, trace.batch),
      h("dt", {}, t("trace.origin")), h("dd", {}, trace.origin)));
    if (trace.readings && trace.readings.length) {
      parts.push(h("h3", {}, t("trace.cold")), readingsBlock(trace.readings, t("trace.cold"), "°C"));
    }
    if (trace.report_url && /^https?:\/\//.test(trace.report_url)) {
      parts.push(h("p", {}, h("a", { href: trace.report_url, target: "_blank", rel: "noopener noreferrer" }, `${t("trace.report")} ↗`)));
    }
  }
  for (const [kind, points] of Object.entries(channel.model.sensors)) {
    if (!points.length) continue;
    parts.push(h("h3", { dataset: { sensor: kind } }, `${t("trace.live")} · ${sensorLabel(kind)}`),
      readingsBlock(points, sensorLabel(kind), sensorUnit(kind)));
  }
  openSheet("trace", t("trace.title"), parts);
}

async function loadWall() {
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/testimonials`);
    if (!res.ok) return;
    const body = await res.json();
    const known = new Set(ui.wall.map((w) => w.o));
    for (const w of (body.testimonials || []).reverse()) if (!known.has(w.o)) ui.wall.push(w);
    ui.wall.sort((a, b) => a.o - b.o);
    ui.wall = ui.wall.slice(-WALL_MAX);
    renderWallCount();
  } catch { /* the wall fills from live cards */ }
}

function renderWallCount() {
  const btn = $("#wall-open");
  btn.dataset.count = ui.wall.length || "";
  if (ui.sheet === "wall") openWall();
}

function openWall() {
  const items = [...ui.wall].reverse();
  openSheet("wall", t("wall.title"), items.length
    ? h("ul", { class: "wall" }, items.map((w) => h("li", {},
      h("blockquote", {}, `“${w.text}”`, h("footer", {}, `— ${w.author}`)))))
    : h("p", { class: "muted" }, t("wall.empty")));
}

function openAllGroupbuys() {
  const specs = [...channel.model.groupbuys.values()].reverse();
  openSheet("groupbuys", t("gb.more", { n: specs.length }), h("ul", { class: "list" }, specs.map((spec) => {
    const g = gbState(spec);
    return h("li", { dataset: { gb: spec.gb } },
      h("div", { class: "grow" }, h("b", {}, spec.product), h("div", { class: "muted" }, countLine(spec, g))),
      h("span", { class: "price" }, yuan(g.unit)));
  })));
}

function openInvite(spec) {
  const url = `${location.origin}/r/${encodeURIComponent(room)}?inviter=${encodeURIComponent(me())}`;
  openSheet("invite", t("gb.invite"), [
    spec.bonus_invites ? h("p", {}, t("gb.bonus", { n: spec.bonus_invites, cents: yuan(spec.bonus_cents) })) : null,
    linkRow(url, t("gb.invite"))]);
}

function linkRow(url, label) {
  return h("div", { class: "link-row" },
    h("input", { value: url, readonly: true, "aria-label": label, onfocus: (e) => e.target.select() }),
    h("button", { type: "button", class: "secondary small", onclick: async () => {
      toast(await copyText(url) ? t("copied") : t("copy.manual"), "ok");
    } }, t("copy")));
}

// -- community --------------------------------------------------------------------------

function metres(a, b) {
  const rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad;
  const dlng = (b.lng - a.lng) * rad;
  const x = Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlng / 2) ** 2;
  return 2 * 6371000 * Math.asin(Math.sqrt(x));
}

function openCommunity() {
  const m = channel.model;
  const parts = [];
  if (m.community) {
    parts.push(h("p", { id: "community-name" }, h("b", {}, m.community.name)),
      m.community.pickup ? h("p", { class: "muted" }, t("community.pickup", { pickup: m.community.pickup })) : null);
  }
  if (ui.nearby) {
    parts.push(ui.nearby.length
      ? [h("p", { class: "muted" }, t("community.choose")),
        h("div", { class: "choices", id: "nearby" }, ui.nearby.map(({ community, distance }) =>
          h("button", { type: "button", onclick: () => choose(community.id) },
            h("span", {}, community.name),
            h("span", { class: "muted" }, distance != null ? `${Math.round(distance)} m` : ""))))]
      : h("p", { class: "muted" }, t("community.none")));
  }
  openSheet("community", t("community.mine"), parts);
}

const LOCATED = "livecore:located";

/** A device that found its compound before, with the permission still granted,
 * finds it again by itself after a reload (the server keeps no location). */
async function relocate() {
  const m = channel.model;
  if (m.community || (m.you && m.you.community) || !navigator.geolocation || !navigator.permissions) return;
  try {
    if (localStorage.getItem(LOCATED) !== "1") return;
    const status = await navigator.permissions.query({ name: "geolocation" });
    if (status.state === "granted") locate({ quiet: true });
  } catch { /* ask again with the button */ }
}

function locate({ quiet = false } = {}) {
  if (!navigator.geolocation) { toast(t("geo.unsupported")); return; }
  const button = $("#locate");
  if (button) button.disabled = true;
  navigator.geolocation.getCurrentPosition(async (pos) => {
    const here = { lat: pos.coords.latitude, lng: pos.coords.longitude };
    try {
      const ack = await channel.request("locate", here);
      if (ack.community) {
        ui.nearby = null;
        channel.model.community = ack.community;
        channel.changed("community", "groups", "groupbuys");
        try { localStorage.setItem(LOCATED, "1"); } catch { /* private mode */ }
        if (!quiet) toast(t("community.found", { name: ack.community.name }), "ok");
      } else {
        ui.nearby = (ack.nearby || []).map((community) => ({ community, distance: metres(here, community) }));
        if (!quiet) openCommunity();
      }
    } catch (err) {
      toast(errorText(err));
    } finally {
      const b = $("#locate");
      if (b) b.disabled = false;
    }
  }, (err) => {
    const b = $("#locate");
    if (b) b.disabled = false;
    toast(err.code === 1 ? t("geo.denied") : t("geo.unavailable"));
  }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 });
}

async function choose(id) {
  try {
    const ack = await channel.request("choose_community", { community: id });
    ui.nearby = null;
    channel.model.community = ack.community;
    channel.changed("community", "groups", "groupbuys");
    try { localStorage.setItem(LOCATED, "1"); } catch { /* private mode */ }
    closeSheet();
    toast(t("community.found", { name: ack.community.name }), "ok");
  } catch (err) {
    toast(errorText(err));
  }
}

// -- nickname ------------------------------------------------------------------------------

function openNick() {
  const input = h("input", { id: "nick-input", maxlength: "20", value: savedName(), placeholder: t("nick.title") });
  openSheet("nick", t("nick.title"), [
    h("p", { class: "muted" }, t("nick.hint")),
    h("form", { class: "link-row", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const name = await setNickname(room, session, input.value);
        knowName(me(), name);
        relabelComments();
        closeSheet();
        toast(t("nick.saved"), "ok");
      } catch (err) { toast(errorText(err)); }
    } }, input, h("button", { type: "submit", id: "nick-save" }, t("nick.save")))]);
}

// -- KOC co-stream ---------------------------------------------------------------------------

function wireCostream() {
  const ask = $("#costream");
  const end = $("#costream-end");
  const role = () => (channel.model.you || {}).role;
  const sync = () => {
    const koc = role() === "koc";
    const onAir = !!(stage && stage.publishing);
    ask.hidden = !koc || onAir;
    end.hidden = !koc || !onAir;
  };
  channel.on("snapshot", sync);
  channel.on("stage", (s) => {
    sync();
    if (s.error) toast(errorText({ code: s.error }));
    if (s.hls && !ui.hls) { ui.hls = true; toast(t("stage.hls"), "ok"); }
  });
  ask.addEventListener("click", () => {
    channel.request("costream_request", {})
      .then(() => toast(t("costream.asked"), "ok"))
      .catch((e) => toast(errorText(e)));
  });
  end.addEventListener("click", async () => {
    end.disabled = true;
    try {
      await stage.stop(); // our WHIP DELETE first, then tell the room
      await channel.request("costream_end", { user: me() });
    } catch (e) {
      toast(errorText(e));
    } finally {
      end.disabled = false;
      sync();
    }
  });
  channel.on("event", (ev) => {
    if (ev.user !== me()) return;
    if (ev.t === "costream_accepted") toast(t("costream.accepted"), "ok");
    if (ev.t === "costream_declined") toast(t("costream.declined"));
    if (ev.t === "costream_ended") { toast(t("costream.ended"), "ok"); sync(); }
  });
}

// -- wiring ------------------------------------------------------------------------------------

function renderAll() {
  applyLabels(document);
  if (!channel) return;
  renderState();
  renderCounts();
  renderComments();
  renderQuestion();
  $("#poll").dataset.key = "";
  renderPoll();
  renderDock();
  rerenderSheet();
}

const RENDER = {
  meta: () => { showMeta(channel.model.meta); renderState(); },
  streams: renderState,
  counts: renderCounts,
  comments: renderComments,
  question: renderQuestion,
  polls: renderPoll,
  cards: () => { renderDock(); if (ui.sheet === "trace") openTrace(); },
  sensors: () => { renderDock(); if (ui.sheet === "trace") openTrace(); },
  groupbuys: renderDock,
  groups: renderDock,
  community: () => { renderDock(); if (ui.sheet === "community") openCommunity(); },
  you: renderDock,
};

function officerLink() {
  const params = new URLSearchParams(location.hash.slice(1));
  const frag = params.get("token") ? `#token=${params.get("token")}` : "";
  return `/o/${encodeURIComponent(room)}${frag}`;
}

async function start() {
  langButton($("#lang"));
  applyLabels(document);
  onLang(renderAll);
  $("#share").href = officerLink();
  $("#sheet-close").addEventListener("click", closeSheet);
  $("#sheet-backdrop").addEventListener("click", closeSheet);
  $("#wall-open").addEventListener("click", openWall);
  $("#nick-open").addEventListener("click", openNick);
  $("#replay").addEventListener("click", playReplay);
  $("#composer").addEventListener("submit", sendComment);
  $("#like").addEventListener("click", tapLike);
  const player = $("#player");
  player.addEventListener("playing", () => { if (channel) { renderState(); renderSound(); } });
  $("#sound").addEventListener("click", () => { player.muted = false; player.play().catch(() => {}); renderSound(); });
  player.addEventListener("volumechange", () => { if (channel) renderSound(); });
  player.addEventListener("emptied", () => { if (channel) renderState(); });
  setInterval(tickDeadlines, 1000);

  fetchRoom(room).then((meta) => { if (!channel || !channel.model.meta) showMeta(meta); })
    .catch((err) => { banner(roomErrorText(err)); });
  try {
    session = await openSession(room);
  } catch (err) {
    banner(err.code === "token_missing" ? t("guest.closed")
      : err.code === "room_not_found" ? t("room.missing") : t("guest.failed"));
    $("#send").disabled = true;
    return;
  }
  const ref = queryParam("ref");
  channel = new RoomChannel({ room, token: session.token, ref });
  if (session.guest) knowName(session.user, session.name);
  keepFresh(room, session, channel);
  window.livecore = { channel, session };
  bindChannel(channel, RENDER);
  channel.on("fatal", async ({ code }) => {
    if (code === 4001 && session.guest) {
      try { channel.token = await renewNow(room, session); banner(""); channel.connect(); } catch { /* banner stays */ }
    }
  });
  channel.on("snapshot", (s) => {
    // The snapshot's `mine` covers the connection's community only: merge, never replace.
    if (s.mine) {
      try { localStorage.setItem(storeKey(), JSON.stringify({ ...myOrders(), ...s.mine })); } catch { /* private mode */ }
    }
    if (s.my_votes) Object.assign(ui.votes, s.my_votes);
    relocate();
    banner("");
    if (s.recovered === false) toast(t("resynced"), "ok");
  });
  channel.on("event", (ev) => {
    if (ev.t === "card" && ev.card && ev.card.kind === "testimonial") {
      ui.wall.push({ o: ev.o, author: ev.card.author, text: ev.card.text });
      ui.wall = ui.wall.slice(-WALL_MAX);
      renderWallCount();
    }
    if (ev.t === "stream_ended" && channel.model.meta && ev.user === channel.model.meta.host) {
      ui.replayTried = 0;
    }
  });
  stage = mountStage({ channel, room, token: () => session.token, main: player, guests: $("#guests"),
    note: null, hls: true, nameOf, selfPreview: true });
  window.livecore.stage = stage;
  wireCostream();
  channel.connect();
  loadWall();
}

start();
