// The host console (/host/{room}#token=…): stage preview, counts, comment
// moderation (delete, mute 10 min, pin as question, mark answered), polls,
// product/traceability/testimonial cards, group buys with every community's
// progress, share-officer commission and the leaderboard.
import { mountStage } from "/static/stage.js";
import { withToken } from "/static/boot.js";
import { applyLabels, labelPage, t } from "/static/i18n.js";
import { learnNames, nameOf } from "/static/session.js";
import {
  $, banner, bindChannel, tickDeadlines, $$, ROLE_LABEL, centsFromYuan, clock, errorText, fetchRoom, fill, h,
  leaderboardList, now, roomErrorText, showBadge, showMeta, sparkline, syncComments,
  timeOfDay, toast, yuan,
} from "/static/room.js";
import { act, channel, me, room, token, ui } from "/static/hostctx.js";
import { endLive, renderLiveControls } from "/static/hostlive.js";
import {
  durationOptions, loadGuests, openGroupbuy, openPoll, optionButtons, optionInput, pinProduct,
  pinBatch, pinTestimonial, pinTrace, previewReadings, registerBatch, renderPolls, setCommission, setGuests,
  tierButtons, tierInput,
} from "/static/hostforms.js";
import { renderClips, wireClips } from "/static/hostclips.js";
import { wireExplain } from "/static/hostexplain.js";
import { wireQuickSheets } from "/static/hostsheets.js";
import { renderHostCoupons, renderHostFlash, wireHostFlash } from "/static/hostflash.js";
import { wireDraws } from "/static/hostdraw.js";

const MUTE_S = 600;
let stage = null;

// -- counts ---------------------------------------------------------------------

function renderCounts() {
  const m = channel.model;
  $("#viewer-count").textContent = m.viewers;
  $("#stat-viewers").textContent = m.viewers;
  $("#stat-likes").textContent = m.likes;
  $("#stat-comments").textContent = m.comments.length;
  let buyers = 0;
  for (const groups of Object.values(m.groups)) for (const g of Object.values(groups)) buyers += g.n || 0;
  $("#stat-buyers").textContent = buyers;
}

// -- comments and moderation ------------------------------------------------------------

function commentItem(c) {
  const role = ROLE_LABEL[c.role];
  const li = h("li", { dataset: { o: c.o, user: c.user } },
    h("button", { type: "button", class: "c-body", "aria-expanded": "false",
      onclick: () => select(c.o) },
    role ? h("span", { class: `role ${c.role}` }, t(role)) : null,
    h("span", { class: "who", dataset: { muted: t("host.muted") } }, nameOf(c.user)),
    h("span", { class: "text" }, c.text),
    c.ts ? h("span", { class: "time" }, timeOfDay(c.ts)) : null));
  return li;
}

function select(offset) {
  ui.selected = ui.selected === offset ? null : offset;
  for (const li of $$("#comments li")) {
    const open = Number(li.dataset.o) === ui.selected;
    li.classList.toggle("open", open);
    li.querySelector(".c-body").setAttribute("aria-expanded", String(open));
    const bar = li.querySelector(".c-actions");
    if (open && !bar) li.append(actionsFor(Number(li.dataset.o), li.dataset.user));
    else if (!open && bar) bar.remove();
  }
}

function actionsFor(offset, user) {
  const isHost = user === me();
  return h("div", { class: "c-actions" },
    h("button", { type: "button", class: "danger small", "data-act": "delete",
      onclick: (e) => act(e.currentTarget, "delete_comment", { offset }, () => toast(t("host.deleted"), "ok")) },
    t("host.delete")),
    isHost ? null : h("button", { type: "button", class: "secondary small", "data-act": "mute",
      onclick: (e) => act(e.currentTarget, "mute", { user, duration_s: MUTE_S },
        () => toast(t("host.muted.toast", { user: nameOf(user) }), "ok")) }, t("host.mute10")),
    h("button", { type: "button", class: "secondary small", "data-act": "pin",
      onclick: (e) => act(e.currentTarget, "pin_question", { offset }, () => toast(t("host.pinned"), "ok")) },
    t("host.pin")),
    h("button", { type: "button", class: "secondary small", "data-act": "answer",
      onclick: (e) => act(e.currentTarget, "answer_question", { offset }, () => toast(t("host.answered"), "ok")) },
    t("host.answer")));
}

function renderComments() {
  const list = $("#comments");
  syncComments(list, channel.model.comments, commentItem, me());
  const muted = channel.model.muted;
  for (const li of list.children) {
    const until = muted[li.dataset.user];
    li.classList.toggle("is-muted", !!until && until > now());
  }
  if (ui.selected != null && !channel.model.comments.some((c) => c.o === ui.selected)) ui.selected = null;
  learnNames(room, channel.model.comments.slice(-100).map((c) => c.user), relabel);
  renderCounts();
}

function relabel() {
  for (const li of $$("#comments li")) {
    const who = li.querySelector(".who");
    if (who) who.textContent = nameOf(li.dataset.user);
  }
}

async function sendComment(ev) {
  ev.preventDefault();
  const input = $("#comment-text");
  const text = input.value.trim();
  if (!text) return;
  await act($("#send"), "comment", { text }, () => { input.value = ""; });
}

function renderQuestion() {
  const q = channel.model.question;
  const card = $("#question");
  card.hidden = !q;
  if (!q) return;
  card.classList.toggle("answered", !!q.answered);
  $("#question-text").textContent = q.text;
  $("#question-meta").textContent = `${nameOf(q.user)}${q.answered ? ` · ✓ ${t("question.answered")}` : ""}`;
  $("#question-answer").hidden = !!q.answered;
}

// -- polls -----------------------------------------------------------------------------------

// -- cards -------------------------------------------------------------------------------------

// -- group buys -------------------------------------------------------------------------------

function communityName(id) {
  if (id === "room") return t("host.groups.room");
  return ui.communities[id] || id;
}

function renderGroups() {
  const box = $("#groups");
  const specs = [...channel.model.groupbuys.values()].reverse();
  if (!specs.length) { fill(box, h("p", { class: "muted" }, t("host.groups.none"))); renderCounts(); return; }
  fill(box, specs.slice(0, 6).map((spec) => {
    const groups = Object.entries(channel.model.groups[spec.gb] || {})
      .sort((a, b) => (b[1].n || 0) - (a[1].n || 0));
    const members = groups.reduce((a, [, g]) => a + (g.n || 0), 0);
    const qty = groups.reduce((a, [, g]) => a + (g.q || 0), 0);
    const formed = groups.filter(([, g]) => g.s === "formed").length;
    return h("div", { class: "gb-host", dataset: { gb: spec.gb } },
      h("div", { class: "gb-head" },
        h("b", {}, spec.product),
        h("span", { class: `state ${spec.closed ? "closed" : "open"}` }, t(spec.closed ? "gb.s.closed" : "gb.s.open"))),
      h("p", { class: "muted" },
        `${yuan(spec.price_cents)} · ${t("host.groups.target", { n: spec.target })} · ${t(spec.scope === "room" ? "host.groups.room" : "host.groups.percommunity")}`,
        spec.closed ? null : [` · ${t("gb.left")} `, h("span", { dataset: { deadline: spec.deadline } }, clock(spec.deadline - now()))]),
      h("p", {}, t("host.groups.line", { n: members, q: qty, formed, groups: groups.length })),
      groups.length
        ? h("ul", { class: "list groups" }, groups.map(([group, g]) => {
          const target = g.target || spec.target;
          const pct = Math.min(100, Math.round(((g.n || 0) / target) * 100));
          return h("li", { dataset: { group } },
            h("div", { class: "grow" },
              h("div", { class: "gb-head" }, h("b", {}, communityName(group)),
                h("span", { class: `state ${g.s || "open"}` }, t(`gb.s.${g.s || "open"}`))),
              h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0",
                "aria-valuemax": String(target), "aria-valuenow": String(g.n || 0) },
              h("span", { style: `width:${pct}%` })),
              h("div", { class: "muted" },
                `${t("host.groups.row", { n: g.n || 0, target, q: g.q || 0 })} · `,
                h("span", { class: "money" }, yuan(g.unit_cents ?? spec.price_cents)),
                g.b ? ` · ✓ ${t("gb.bonus.on", { cents: yuan(spec.bonus_cents) })}` : "",
                g.missing ? ` · ${t("host.groups.togo", { n: g.missing })}` : ""),
              ui.demo && g.s === "formed"
                ? h("button", { type: "button", class: "secondary small demo-receive",
                  onclick: (e) => demoReceive(e.currentTarget, spec.gb, group) }, t("host.demo.receive"))
                : null));
        }))
        : h("p", { class: "muted" }, t("host.groups.nobody")));
  }));
  renderCounts();
}

/** The demo's shop stand-in: every formed order of the group received (--demo only). */
async function demoReceive(button, gb, group) {
  button.disabled = true;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/demo/receipts`, { method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ gb, group }) });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { toast(errorText(body)); return; }
    toast(t("host.demo.received", { n: body.orders }), "ok");
  } finally {
    button.disabled = false;
  }
}

async function loadCommunities() {
  try {
    const res = await fetch("/api/communities");
    if (!res.ok) return;
    const body = await res.json();
    for (const c of body.communities || []) ui.communities[c.id] = c.name;
    renderGroups();
  } catch { /* names are a nicety: ids are shown instead */ }
}

// -- commission, leaderboard ----------------------------------------------------------------------

function renderLeaderboard() {
  leaderboardList($("#leaderboard"), channel.model.leaderboard, null, nameOf);
}


// -- live state, camera, highlights -----------------------------------------------------------

function renderState() {
  if (!channel.model.meta && !(stage && stage.publishing)) return;
  renderLiveControls(stage);
}

async function flip() {
  try { await stage.flip(); } catch (err) { toast(errorText({ code: "camera_missing" })); }
}

function toggleMic() {
  const muted = stage.mute();
  const btn = $("#mic");
  btn.setAttribute("aria-pressed", String(muted));
  btn.dataset.i18n = muted ? "host.unmute" : "host.mute";
  btn.textContent = t(btn.dataset.i18n);
}

async function mark(ev) {
  const button = ev.currentTarget;
  button.disabled = true;
  try {
    await channel.request("mark", {});
    toast(t("host.marked"), "ok");
  } catch (err) {
    toast(errorText(err));  // not_recording before the stream is live
  } finally {
    button.disabled = false;
  }
}

// -- wiring ---------------------------------------------------------------------------------------

const RENDER = {
  meta: () => { showMeta(channel.model.meta); renderState(); },
  streams: renderState,
  counts: renderCounts,
  comments: renderComments,
  question: renderQuestion,
  polls: renderPolls,
  groupbuys: renderGroups,
  groups: renderGroups,
  leaderboard: renderLeaderboard,
};

function relabelAll() {
  applyLabels(document);
  durationOptions();
  renderCostreams();
  renderClips();
  if (!channel.model.meta) return;
  renderState();
  const list = $("#comments");
  list.replaceChildren();
  renderComments();
  renderQuestion();
  renderPolls();
  renderGroups();
  renderLeaderboard();
  renderHostFlash();
  renderHostCoupons();
}

function start() {
  labelPage(relabelAll);
  durationOptions();
  fill($("#poll-options"), optionInput(), optionInput());
  optionButtons();
  $("#poll-add").addEventListener("click", () => { $("#poll-options").append(optionInput()); optionButtons(); });
  $("#poll-form").addEventListener("submit", openPoll);
  $("#gb-tier-add").addEventListener("click", () => { $("#gb-tiers").append(tierInput()); tierButtons(); });
  $("#gb-form").addEventListener("submit", openGroupbuy);
  $("#product-form").addEventListener("submit", pinProduct);
  $("#trace-form").addEventListener("submit", pinTrace);
  $("#batch-form").addEventListener("submit", pinBatch);
  $("#batch-new-form").addEventListener("submit", registerBatch);
  $("#tc-readings").addEventListener("input", previewReadings);
  $("#testimonial-form").addEventListener("submit", pinTestimonial);
  $("#commission-form").addEventListener("submit", setCommission);
  $("#composer").addEventListener("submit", sendComment);
  $("#guests-toggle").addEventListener("change", setGuests);
  $("#question-answer").addEventListener("click", (e) => {
    const q = channel.model.question;
    if (q) act(e.currentTarget, "answer_question", { offset: q.target });
  });
  $("#dashboard-link").href = withToken(`/d/${encodeURIComponent(room)}`);
  wireQuickSheets(); // the controls a host needs while live: one tap, in a sheet on a phone
  wireHostFlash();
  const preview = $("#preview");
  preview.addEventListener("playing", () => { $("#stage-note").hidden = true; });
  preview.addEventListener("emptied", () => { $("#stage-note").hidden = false; });
  renderLeaderboard();
  setInterval(tickDeadlines, 1000);
  showBadge("scheduled");
  if (!window.isSecureContext) banner(t("host.insecure"));

  if (!token) {
    banner(t("host.notoken"));
    fetchRoom().then(showMeta).catch((err) => banner(`${t("host.notoken")} ${roomErrorText(err)}`));
    for (const b of $$(".host-bar button")) b.disabled = true;
    return;
  }
  bindChannel(channel, RENDER);
  channel.on("snapshot", (s) => {
    if (s.commission) {
      $("#cm-l1").value = s.commission.level1_bp / 100;
      $("#cm-l2").value = s.commission.level2_bp / 100;
    }
    if (window.isSecureContext) banner("");
    const you = channel.model.you;
    if (you && you.role !== "host") banner(t("host.nothost"));
  });
  fetchRoom().then((meta) => {
    if (!channel.model.meta) showMeta(meta);
    ui.demo = !!meta.demo;
    $("#demo-shop").hidden = !ui.demo;
    renderGroups();
  }).catch(() => {});
  stage = mountStage({ channel, room, token, main: $("#preview"), guests: $("#guests"),
    goLive: $("#golive"), note: $("#stage-note"), nameOf, endLive: () => endLive(stage) });
  window.livecore = { channel, stage };
  channel.on("stage", (s) => {
    renderState();
    if (s.error) toast(errorText({ code: s.error }));
    else if (s.publishing === true) toast(t("host.live.toast"), "ok");
    else if (s.publishing === false) toast(t("host.ended.toast"), "ok");
    else if (s.recovered) toast(t("host.reconnected"), "ok");
  });
  $("#flip").addEventListener("click", flip);
  $("#mic").addEventListener("click", toggleMic);
  $("#mark").addEventListener("click", mark);
  wireExplain(channel);
  channel.on("event", costreamEvent);
  wireClips();
  wireDraws();
  channel.connect();
  loadCommunities();
  loadGuests();
}

// Co-stream requests and KOCs on air: accept / decline / end.
const costreams = new Map(); // user → "asked" | "live"

function costreamEvent(ev) {
  if (!["costream_requested", "costream_accepted", "costream_declined", "costream_ended"].includes(ev.t)) return;
  if (ev.t === "costream_requested") costreams.set(ev.user, "asked");
  else if (ev.t === "costream_accepted") costreams.set(ev.user, "live");
  else costreams.delete(ev.user);
  renderCostreams();
}

function renderCostreams() {
  const list = $("#costream-list");
  fill(list, [...costreams].map(([user, state]) => h("li", { dataset: { user, state } },
    h("span", {}, t(state === "asked" ? "host.costream.asks" : "host.costream.live", { user: nameOf(user) })),
    state === "asked"
      ? [h("button", { type: "button", class: "accept", onclick: (e) => act(e.currentTarget, "costream_accept", { user }) }, t("host.accept")),
        h("button", { type: "button", class: "secondary decline", onclick: (e) => act(e.currentTarget, "costream_decline", { user }) }, t("host.decline"))]
      : h("button", { type: "button", class: "danger end", onclick: (e) => act(e.currentTarget, "costream_end", { user }) }, t("host.end")))));
  $("#costreams").hidden = costreams.size === 0;
}

start();
