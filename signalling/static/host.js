// The host console (/host/{room}#token=…): stage preview, counts, comment
// moderation (delete, mute 10 min, pin as question, mark answered), polls,
// product/traceability/testimonial cards, group buys with every community's
// progress, share-officer commission and the leaderboard.
import { RoomChannel } from "./channel.js";
import { mountStage } from "./stage.js";
import {
  $, banner, bindChannel, tickDeadlines, $$, ROLE_LABEL, centsFromYuan, clock, closeText, errorText, fetchRoom, fill, h,
  leaderboardList, now, roomErrorText, roomId, showConnection, showMeta, sparkline, syncComments,
  timeOfDay, toast, tokenFromFragment, yuan,
} from "./room.js";

const MUTE_S = 600;
const MAX_OPTIONS = 6;
const MAX_TIERS = 5;
const READING_STEP_S = 600;

const room = roomId();
const token = tokenFromFragment();
const channel = new RoomChannel({ room, token });
window.livecore = { channel };

const ui = { selected: null, communities: {} };
const me = () => (channel.model.you ? channel.model.you.user : null);

/** Run a request from a button or form: disables it meanwhile, toasts the outcome. */
async function act(button, type, fields, done) {
  if (button) button.disabled = true;
  try {
    const ack = await channel.request(type, fields);
    if (done) done(ack);
    return ack;
  } catch (err) {
    toast(errorText(err));
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

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
    role ? h("span", { class: "role" }, role) : null,
    h("span", { class: "who" }, c.user),
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
      onclick: (e) => act(e.currentTarget, "delete_comment", { offset }, () => toast("已删除 Deleted", "ok")) },
    "删除 Delete"),
    isHost ? null : h("button", { type: "button", class: "secondary small", "data-act": "mute",
      onclick: (e) => act(e.currentTarget, "mute", { user, duration_s: MUTE_S },
        () => toast(`${user} 已禁言 10 分钟 muted for 10 min`, "ok")) }, "禁言10分钟 Mute 10 min"),
    h("button", { type: "button", class: "secondary small", "data-act": "pin",
      onclick: (e) => act(e.currentTarget, "pin_question", { offset }, () => toast("已置顶 Pinned", "ok")) },
    "置顶提问 Pin question"),
    h("button", { type: "button", class: "secondary small", "data-act": "answer",
      onclick: (e) => act(e.currentTarget, "answer_question", { offset }, () => toast("已回答 Answered", "ok")) },
    "已回答 Answered"));
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
  renderCounts();
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
  $("#question-meta").textContent = `${q.user} 提问 asked${q.answered ? " · ✓ 已回答 Answered" : ""}`;
  $("#question-answer").hidden = !!q.answered;
}

// -- polls -----------------------------------------------------------------------------------

function optionInput(value = "") {
  const row = h("div", { class: "option-row" },
    h("input", { class: "poll-option", maxlength: "60", required: true, value,
      "aria-label": "选项 Option", placeholder: "选项 Option" }),
    h("button", { type: "button", class: "ghost small", "aria-label": "删除选项 Remove option",
      onclick: () => { row.remove(); optionButtons(); } }, "×"));
  return row;
}

function optionButtons() {
  const rows = $$("#poll-options .option-row");
  rows.forEach((row) => { row.querySelector("button").disabled = rows.length <= 2; });
  $("#poll-add").disabled = rows.length >= MAX_OPTIONS;
}

async function openPoll(ev) {
  ev.preventDefault();
  const question = $("#poll-question").value.trim();
  const options = $$(".poll-option").map((i) => i.value.trim()).filter(Boolean);
  if (options.length < 2) { toast("至少两个选项 At least two options"); return; }
  const fields = { question, options };
  const duration = Number($("#poll-duration").value);
  if (duration) fields.duration_s = duration;
  await act($("#poll-open"), "poll_open", fields, () => {
    toast("投票已发起 Poll opened", "ok");
    $("#poll-question").value = "";
    fill($("#poll-options"), optionInput(), optionInput());
    optionButtons();
  });
}

function renderPolls() {
  const polls = [...channel.model.polls.values()].reverse();
  const box = $("#polls");
  if (!polls.length) { fill(box, h("p", { class: "muted" }, "还没有投票 No polls yet")); return; }
  fill(box, polls.slice(0, 4).map((p) => {
    const counts = p.counts || p.options.map(() => 0);
    const total = counts.reduce((a, b) => a + b, 0);
    const open = p.status === "open";
    return h("div", { class: "poll-item", dataset: { poll: p.poll } },
      h("div", { class: "gb-head" }, h("b", {}, p.question),
        h("span", { class: `state ${open ? "open" : "closed"}` }, open ? "进行中 Open" : "已结束 Closed")),
      p.options.map((text, i) => {
        const pct = total ? Math.round((counts[i] / total) * 100) : 0;
        return h("div", {},
          h("div", { class: "gb-head" }, h("span", {}, text), h("span", { class: "money" }, `${pct}% · ${counts[i] || 0}`)),
          h("div", { class: "progress" }, h("span", { style: `width:${pct}%` })));
      }),
      h("div", { class: "row" },
        h("span", { class: "muted" }, `共 ${total} 票 votes`),
        open && p.closes_at ? h("span", { class: "muted" }, "剩余 ", h("span", { dataset: { deadline: p.closes_at } }, "")) : null,
        open ? h("button", { type: "button", class: "danger small", style: "margin-left:auto",
          onclick: (e) => act(e.currentTarget, "poll_close", { poll: p.poll }) }, "结束 Close") : null));
  }));
  tickDeadlines();
}

// -- cards -------------------------------------------------------------------------------------

function readingsFrom(text) {
  const values = text.split(/[\s,，;]+/).filter(Boolean).map(Number);
  if (values.some((v) => !Number.isFinite(v))) return null;
  const end = Math.floor(now());
  return values.slice(-50).map((v, i, all) => [end - (all.length - 1 - i) * READING_STEP_S, v]);
}

async function pinProduct(ev) {
  ev.preventDefault();
  const price = centsFromYuan($("#pc-price").value);
  if (price == null) { toast("价格格式不对 Price: e.g. 59.90"); return; }
  const card = { kind: "product", name: $("#pc-name").value.trim(), price_cents: price };
  const stock = $("#pc-stock").value.trim();
  if (stock) card.stock = Number(stock);
  const image = $("#pc-image").value.trim();
  if (image) card.image_url = image;
  await act(ev.submitter, "card", card, () => toast("商品卡已置顶 Product card pinned", "ok"));
}

async function pinTrace(ev) {
  ev.preventDefault();
  const card = { kind: "trace", batch: $("#tc-batch").value.trim(), origin: $("#tc-origin").value.trim() };
  const report = $("#tc-report").value.trim();
  if (report) card.report_url = report;
  const text = $("#tc-readings").value.trim();
  if (text) {
    const readings = readingsFrom(text);
    if (!readings) { toast("温度请用数字，空格分隔 Readings: numbers separated by spaces"); return; }
    card.readings = readings;
  }
  await act(ev.submitter, "card", card, () => toast("溯源卡已置顶 Traceability card pinned", "ok"));
}

function previewReadings() {
  const readings = readingsFrom($("#tc-readings").value.trim());
  fill($("#tc-preview"), readings && readings.length ? sparkline(readings, { label: "preview" }) : null);
}

async function pinTestimonial(ev) {
  ev.preventDefault();
  const card = { kind: "testimonial", author: $("#tm-author").value.trim(), text: $("#tm-text").value.trim() };
  await act(ev.submitter, "card", card, () => toast("评价已置顶 Testimonial pinned", "ok"));
}

// -- group buys -------------------------------------------------------------------------------

function tierInput() {
  const row = h("div", { class: "option-row tier" },
    h("input", { class: "tier-members", type: "number", min: "2", max: "10000", placeholder: "人数 members",
      "aria-label": "人数 Members", required: true }),
    h("input", { class: "tier-discount", inputmode: "decimal", placeholder: "减 元 discount",
      "aria-label": "每件减 Discount (元)", required: true }),
    h("button", { type: "button", class: "ghost small", "aria-label": "删除阶梯 Remove tier",
      onclick: () => { row.remove(); tierButtons(); } }, "×"));
  return row;
}

function tierButtons() {
  $("#gb-tier-add").disabled = $$("#gb-tiers .tier").length >= MAX_TIERS;
}

async function openGroupbuy(ev) {
  ev.preventDefault();
  const price = centsFromYuan($("#gb-price").value);
  if (price == null) { toast("价格格式不对 Price: e.g. 59.90"); return; }
  const fields = {
    product: $("#gb-product").value.trim(),
    price_cents: price,
    target: Number($("#gb-target").value),
    duration_s: Math.round(Number($("#gb-duration").value) * 60),
    max_qty: Number($("#gb-max").value || 5),
    scope: $("#gb-scope").value,
  };
  const tiers = [];
  for (const row of $$("#gb-tiers .tier")) {
    const members = Number(row.querySelector(".tier-members").value);
    const cents = centsFromYuan(row.querySelector(".tier-discount").value);
    if (!members || cents == null) { toast("阶梯填写不完整 Tier: members and discount"); return; }
    tiers.push([members, cents]);
  }
  if (tiers.length) fields.tiers = tiers.sort((a, b) => a[0] - b[0]);
  const invites = Number($("#gb-bonus-invites").value || 0);
  const bonus = centsFromYuan($("#gb-bonus").value || "0");
  if (invites && bonus) { fields.bonus_invites = invites; fields.bonus_cents = bonus; }
  else if (invites || bonus) { toast("邻里助力需同时填写人数和金额 Bonus: set both or none"); return; }
  await act($("#gb-open"), "groupbuy_open", fields, () => {
    toast("拼团已发起 Group buy opened", "ok");
    $("#groups-card").open = true;
  });
}

function communityName(id) {
  if (id === "room") return "全场 Whole room";
  return ui.communities[id] || id;
}

function renderGroups() {
  const box = $("#groups");
  const specs = [...channel.model.groupbuys.values()].reverse();
  if (!specs.length) { fill(box, h("p", { class: "muted" }, "还没有拼团 No group buys yet")); renderCounts(); return; }
  fill(box, specs.slice(0, 6).map((spec) => {
    const groups = Object.entries(channel.model.groups[spec.gb] || {})
      .sort((a, b) => (b[1].n || 0) - (a[1].n || 0));
    const members = groups.reduce((a, [, g]) => a + (g.n || 0), 0);
    const qty = groups.reduce((a, [, g]) => a + (g.q || 0), 0);
    const formed = groups.filter(([, g]) => g.s === "formed").length;
    return h("div", { class: "gb-host", dataset: { gb: spec.gb } },
      h("div", { class: "gb-head" },
        h("b", {}, spec.product),
        h("span", { class: `state ${spec.closed ? "closed" : "open"}` }, spec.closed ? "已结束 Closed" : "进行中 Open")),
      h("p", { class: "muted" },
        `${yuan(spec.price_cents)} · 成团 ${spec.target} 人 · ${spec.scope === "room" ? "全场 room" : "按小区 per community"}`,
        spec.closed ? null : [" · 剩余 ", h("span", { dataset: { deadline: spec.deadline } }, clock(spec.deadline - now()))]),
      h("p", {}, `${members} 人参团 joined · ${qty} 件 items · ${formed}/${groups.length} 已成团 formed`),
      groups.length
        ? h("ul", { class: "list groups" }, groups.map(([group, g]) => {
          const target = g.target || spec.target;
          const pct = Math.min(100, Math.round(((g.n || 0) / target) * 100));
          return h("li", { dataset: { group } },
            h("div", { class: "grow" },
              h("div", { class: "gb-head" }, h("b", {}, communityName(group)),
                h("span", { class: `state ${g.s || "open"}` },
                  { open: "拼团中 Open", formed: "已成团 Formed", failed: "未成团 Failed" }[g.s] || g.s)),
              h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0",
                "aria-valuemax": String(target), "aria-valuenow": String(g.n || 0) },
              h("span", { style: `width:${pct}%` })),
              h("div", { class: "muted" },
                `${g.n || 0}/${target} 人 members · ${g.q || 0} 件 items · `,
                h("span", { class: "money" }, yuan(g.unit_cents ?? spec.price_cents)),
                g.b ? " · ✓ 邻里助力 bonus" : "",
                g.missing ? ` · 还差 ${g.missing} 人 to go` : "")));
        }))
        : h("p", { class: "muted" }, "还没有人参团 No one joined yet"));
  }));
  renderCounts();
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

async function setCommission(ev) {
  ev.preventDefault();
  const l1 = Math.round(Number($("#cm-l1").value) * 100);
  const l2 = Math.round(Number($("#cm-l2").value) * 100);
  if (!Number.isFinite(l1) || !Number.isFinite(l2) || l1 < 0 || l2 < 0 || l1 + l2 > 10000) {
    toast("佣金比例 0–100%，两级之和不超过 100% Levels 0–100 %, sum ≤ 100 %");
    return;
  }
  await act(ev.submitter, "commission_set", { level1_bp: l1, level2_bp: l2 }, (ack) => {
    const el = $("#cm-current");
    el.hidden = false;
    el.textContent = `当前 Current: ${ack.level1_bp / 100}% / ${ack.level2_bp / 100}%`;
    toast("佣金已保存 Commission saved", "ok");
  });
}

function renderLeaderboard() {
  leaderboardList($("#leaderboard"), channel.model.leaderboard, null);
}


// -- wiring ---------------------------------------------------------------------------------------

const RENDER = {
  meta: () => showMeta(channel.model.meta),
  counts: renderCounts,
  comments: renderComments,
  question: renderQuestion,
  polls: renderPolls,
  groupbuys: renderGroups,
  groups: renderGroups,
  leaderboard: renderLeaderboard,
};

function start() {
  fill($("#poll-options"), optionInput(), optionInput());
  optionButtons();
  $("#poll-add").addEventListener("click", () => { $("#poll-options").append(optionInput()); optionButtons(); });
  $("#poll-form").addEventListener("submit", openPoll);
  $("#gb-tier-add").addEventListener("click", () => { $("#gb-tiers").append(tierInput()); tierButtons(); });
  $("#gb-form").addEventListener("submit", openGroupbuy);
  $("#product-form").addEventListener("submit", pinProduct);
  $("#trace-form").addEventListener("submit", pinTrace);
  $("#tc-readings").addEventListener("input", previewReadings);
  $("#testimonial-form").addEventListener("submit", pinTestimonial);
  $("#commission-form").addEventListener("submit", setCommission);
  $("#composer").addEventListener("submit", sendComment);
  $("#question-answer").addEventListener("click", (e) => {
    const q = channel.model.question;
    if (q) act(e.currentTarget, "answer_question", { offset: q.target });
  });
  const preview = $("#preview");
  preview.addEventListener("playing", () => { $("#stage-note").hidden = true; });
  preview.addEventListener("emptied", () => { $("#stage-note").hidden = false; });
  renderLeaderboard();
  setInterval(tickDeadlines, 1000);

  if (!token) {
    banner("链接中没有令牌：请使用带 #token= 的主播链接。No token in the link: open the host link with #token=.");
    fetchRoom().then(showMeta).catch((err) => {
      banner(`${$("#banner").textContent} ${roomErrorText(err)}`);
      $("#store").textContent = "";
    });
    return;
  }
  bindChannel(channel, RENDER);
  channel.on("snapshot", (s) => {
    if (s.commission) {
      $("#cm-l1").value = s.commission.level1_bp / 100;
      $("#cm-l2").value = s.commission.level2_bp / 100;
    }
    banner("");
    const you = channel.model.you;
    if (you && you.role !== "host") banner("这是观众令牌：主播操作会被拒绝。This is not a host token: host actions will be refused.");
  });
  fetchRoom().then((meta) => { if (!channel.model.meta) showMeta(meta); }).catch(() => {});
  const stage = mountStage({ channel, room, token, main: $("#preview"), guests: $("#guests"),
                            goLive: $("#golive"), note: $("#stage-note") });
  window.livecore = { channel, stage }; // for diagnostics and the browser tests
  channel.on("event", costreamEvent);
  channel.connect();
  loadCommunities();
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
  list.replaceChildren();
  for (const [user, state] of costreams) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = state === "asked" ? `${user} 申请连麦 asks to co-stream` : `${user} 连麦中 on air`;
    li.append(name);
    const button = (label, kind) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", (e) => act(e.currentTarget, kind, { user }));
      li.append(b);
    };
    if (state === "asked") { button("同意 Accept", "costream_accept"); button("拒绝 Decline", "costream_decline"); }
    else button("结束 End", "costream_end");
    list.append(li);
  }
  $("#costreams").hidden = costreams.size === 0;
}

start();
