// The viewer page (/r/{room}): a phone-first live-commerce layout. The video
// fills the screen (letterboxed, never cropped), comments float over it, the
// pinned product and the compound's group buy (progress, countdown, 参团) stay
// at the bottom within thumb reach; polls float as an overlay; the
// traceability card, the testimonial wall, the compound finder and the
// nickname open in a bottom sheet. A shared link needs no token (guest entry).
import { RoomChannel } from "/static/channel.js";
import { mountStage } from "/static/stage.js";
import { queryParam, withToken } from "/static/boot.js";
import { applyLabels, labelPage, t } from "/static/i18n.js";
import { keepSession, knowName, learnNames, nameOf, openSession } from "/static/session.js";
import {
  $, $$, ROLE_LABEL, banner, bindChannel, clock, errorText, fetchRoom, fill, h,
  now, roomErrorText, showBadge, showMeta, syncComments, tickDeadlines, toast,
} from "/static/room.js";
import { renderDock } from "/static/dock.js";
import { renderCoupons, renderFlash, wireFlash } from "/static/viewerflash.js";
import { mountLuckyBag } from "/static/luckybag.js";
import { wireExplains } from "/static/explainclips.js";
import {
  askNickOnce, closeSheet, loadWall, openCommunity, openNick, openTrace, openWall, relocate, renderWallCount,
  rerenderSheet,
} from "/static/sheets.js";
import { bind, channel, me, mergeOrders, room, session, stage, ui } from "/static/viewstate.js";

const LIKE_EVERY_MS = 300;
const LIKE_MAX = 50;
const OVERLAY_COMMENTS = 60;
const WALL_MAX = 30;
/** How often an ended room's page asks whether its replay is ready (plus jitter). */
const REPLAY_ASK_MS = 3000;

// -- header: badge, counts, ended state -----------------------------------------

function hostLive() {
  const m = channel.model;
  return !!(m.meta && m.streams.includes(m.meta.host));
}

/** The room is live but the host's stream is gone (a reloaded page, a lost network):
 * only 下播 or the end grace running out ends a live, so the room waits. */
function hostAway() {
  const status = channel.model.meta && channel.model.meta.status;
  return (status === "live" || (ui.everLive && status !== "ended")) && !hostLive();
}

function roomState() {
  const m = channel.model;
  if (hostLive() || hostAway()) return "live";
  const status = m.meta && m.meta.status;
  if (status === "ended") return "ended";
  return "scheduled";
}

function renderState() {
  if (!channel.model.meta) return;
  const state = roomState();
  if (state === "live") ui.everLive = true;
  showBadge(state);
  document.body.dataset.state = state;
  const ended = $("#ended");
  ended.hidden = state !== "ended" || ui.replaying; // the replay plays in the clear
  const note = $("#stage-note");
  note.hidden = (state !== "scheduled" && !(state === "live" && !playing())) || ui.replaying;
  note.dataset.away = String(state === "live" && hostAway());
  $("#stage-note-text").dataset.i18n = state === "scheduled" ? "stage.waiting"
    : hostAway() ? "stage.host_away" : "stage.connecting";
  $("#stage-note-text").textContent = t($("#stage-note-text").dataset.i18n);
  if (state === "ended") lookForReplay();
  const replay = $("#replay");
  replay.hidden = !(state === "ended" && ui.replay);
  renderSound();
}

/** The HLS level playing, as a small note (高清/标清/流畅); hidden off HLS. */
function showQuality(quality) {
  const chip = $("#quality");
  chip.hidden = !quality;
  if (!quality) return;
  chip.dataset.i18n = `quality.${quality}`;
  chip.textContent = t(chip.dataset.i18n);
}

function renderSound() {
  const v = $("#player");
  $("#sound").hidden = !(v.muted && !v.paused && v.readyState >= 2 && roomState() !== "ended");
}

function playing() {
  const v = $("#player");
  return !!(v.srcObject || v.currentSrc) && v.readyState >= 2;
}

/** The room's public state says whether a replay exists (`replay`); asked again now and then. */
async function lookForReplay() {
  if (ui.replay || Date.now() - ui.replayTried < REPLAY_ASK_MS) return;
  ui.replayTried = Date.now();
  // The replay is built seconds after the end: ask again soon (with jitter, so a
  // room's viewers do not ask all at once), until it is there.
  clearTimeout(ui.replayTimer);
  ui.replayTimer = setTimeout(() => { if (!ui.replay) lookForReplay(); },
    REPLAY_ASK_MS + Math.random() * REPLAY_ASK_MS);
  try {
    const meta = await fetchRoom(room);
    if (meta && typeof meta.replay === "string" && meta.replay) {
      ui.replay = meta.replay;
      renderState();
    }
  } catch { /* no replay yet */ }
}

function playReplay() {
  ui.replaying = true;
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
    askNickOnce();
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
    if (s.hls && s.reason === "recovery") toast(t("stage.hls.recovery"));
    else if (s.hls && !ui.hls) { ui.hls = true; toast(t("stage.hls"), "ok"); }
    if ("away" in s) { ui.hostAway = s.away; renderState(); }
    if ("quality" in s) showQuality(s.quality);
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
  renderFlash();
  renderCoupons();
  rerenderSheet();
}

const RENDER = {
  meta: () => { showMeta(channel.model.meta); renderState(); renderDock(); },
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

async function start() {
  labelPage(renderAll);
  $("#share").href = withToken(`/o/${encodeURIComponent(room)}`);
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
    bind({ session: await openSession(room) });
  } catch (err) {
    banner(err.code === "token_missing" ? t("guest.closed")
      : err.code === "room_not_found" ? t("room.missing") : t("guest.failed"));
    $("#send").disabled = true;
    return;
  }
  const ref = queryParam("ref");
  bind({ channel: new RoomChannel({ room, token: session.token, ref }) });
  if (session.guest) knowName(session.user, session.name);
  window.livecore = { channel, session };
  bindChannel(channel, RENDER);
  keepSession(room, session, channel);
  channel.on("snapshot", (s) => {
    if (s.mine) mergeOrders(s.mine);
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
  bind({ stage: mountStage({ channel, room, token: () => session.token, main: player, guests: $("#guests"),
    note: null, hls: true, nameOf, selfPreview: true }) });
  window.livecore.stage = stage;
  channel.on("names", relabelComments);
  wireCostream();
  wireFlash();
  mountLuckyBag({ channel, room, me, box: $("#draw") });
  wireExplains(channel, room);
  channel.connect();
  loadWall();
}

start();
