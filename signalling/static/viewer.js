// The viewer page (/r/{room}#token=…): video stage, comments, likes, the pinned
// question, polls, product/traceability/testimonial cards, group buys for the
// viewer's community, finding that community, and the share-officer panel.
import { RoomChannel } from "./channel.js";
import { mountStage } from "./stage.js";
import {
  $, banner, bindChannel, tickDeadlines, $$, ROLE_LABEL, clock, closeText, copyText, errorText, fetchRoom, fill, h, leaderboardList,
  now, num, queryParam, roomErrorText, roomId, showConnection, showMeta, sparkline, syncComments,
  timeOfDay, toast, tokenFromFragment, yuan,
} from "./room.js";

const LIKE_EVERY_MS = 300;
const LIKE_MAX = 50;

const room = roomId();
const token = tokenFromFragment();
const inviter = queryParam("inviter");
const channel = new RoomChannel({ room, token, ref: queryParam("ref") });
window.livecore = { channel };

const ui = {
  likesShown: 0,
  likesPending: 0,
  likeTimer: null,
  votes: {},            // poll → option chosen here
  qty: {},              // gb → quantity in the stepper
  nearby: null,         // [{community, distance_m}] offered by locate
  officerAsked: 0,
};

const me = () => (channel.model.you ? channel.model.you.user : null);
const storeKey = () => `livecore:orders:${room}:${me()}`;

/** Group buys this viewer joined: the snapshot's `mine`, kept up to date by our acks. */
function myOrders() {
  try { return JSON.parse(localStorage.getItem(storeKey()) || "{}"); } catch { return {}; }
}
function saveOrder(gb, qty) {
  const orders = myOrders();
  if (qty) orders[gb] = qty; else delete orders[gb];
  try { localStorage.setItem(storeKey(), JSON.stringify(orders)); } catch { /* private mode */ }
}

// -- header, counts ---------------------------------------------------------

function renderCounts() {
  const m = channel.model;
  ui.likesShown = Math.max(ui.likesShown, m.likes);
  $("#viewer-count").textContent = m.viewers;
  $("#like-count").textContent = ui.likesShown;
  $("#stage-like-count").textContent = ui.likesShown;
}

// -- comments -----------------------------------------------------------------

function commentItem(c) {
  const role = ROLE_LABEL[c.role];
  return h("li", { dataset: { o: c.o }, class: c.user === me() ? "mine" : null },
    role ? h("span", { class: "role" }, role) : null,
    h("span", { class: "who" }, c.user),
    h("span", { class: "text" }, c.text),
    c.ts ? h("span", { class: "time" }, timeOfDay(c.ts)) : null);
}

function renderComments() {
  syncComments($("#comments"), channel.model.comments, commentItem, me());
  const until = channel.model.muted[me()];
  const input = $("#comment-text");
  if (until && until > now()) {
    input.placeholder = `你已被禁言至 ${timeOfDay(until * 1000)} Muted`;
  } else input.placeholder = "说点什么… Say something";
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

// -- likes ------------------------------------------------------------------------

function tapLike() {
  ui.likesPending += 1;
  ui.likesShown += 1;
  renderCounts();
  const heart = $("#like");
  heart.classList.remove("pop");
  void heart.offsetWidth; // restart the animation
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

// -- pinned question ------------------------------------------------------------------

function renderQuestion() {
  const q = channel.model.question;
  const card = $("#question");
  card.hidden = !q;
  if (!q) return;
  card.classList.toggle("answered", !!q.answered);
  $("#question-text").textContent = q.text;
  $("#question-meta").textContent = `${q.user} 提问 asked${q.answered ? " · ✓ 已回答 Answered" : ""}`;
}

// -- poll ---------------------------------------------------------------------------------

function currentPoll() {
  const polls = [...channel.model.polls.values()];
  const open = polls.filter((p) => p.status === "open");
  return open.length ? open[open.length - 1] : polls[polls.length - 1] || null;
}

function renderPoll() {
  const card = $("#poll");
  const p = currentPoll();
  card.hidden = !p;
  if (!p) return;
  const counts = p.counts || p.options.map(() => 0);
  const total = counts.reduce((a, b) => a + b, 0);
  const open = p.status === "open" && !(p.closes_at && p.closes_at <= now());
  const canVote = open && channel.model.you && channel.model.you.role !== "host";
  const key = `${p.poll}:${open}:${canVote}:${p.options.length}`;
  if (card.dataset.key !== key) {
    card.dataset.key = key;
    card.dataset.poll = p.poll;
    fill(card,
      h("h2", {}, "投票 ", h("small", {}, "Poll"),
        h("span", { class: `state ${open ? "open" : "closed"}` }, open ? "进行中 Open" : "已结束 Closed"),
        open && p.closes_at ? h("small", { dataset: { deadline: p.closes_at } }, "") : null),
      h("p", { class: "q-text" }, p.question),
      h("div", { class: "options" }, p.options.map((text, i) =>
        h("button", { type: "button", class: "option", disabled: !canVote, dataset: { i },
          onclick: () => vote(p.poll, i) },
        h("span", { class: "bar" }), h("span", { class: "label" }, text),
        h("span", { class: "pct" }, "")))),
      h("p", { class: "muted total" }, ""));
  }
  $$(".option", card).forEach((btn, i) => {
    const pct = total ? Math.round((counts[i] / total) * 100) : 0;
    btn.querySelector(".bar").style.width = `${pct}%`;
    btn.querySelector(".pct").textContent = `${pct}% · ${counts[i] || 0}`;
    btn.classList.toggle("chosen", ui.votes[p.poll] === i);
    btn.setAttribute("aria-pressed", ui.votes[p.poll] === i ? "true" : "false");
  });
  card.querySelector(".total").textContent = `共 ${total} 票 ${total} votes`;
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

// -- group buys --------------------------------------------------------------------------------

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

function gbCard(spec) {
  const group = myGroup(spec);
  const state = group && channel.model.groups[spec.gb] ? channel.model.groups[spec.gb][group] : null;
  const n = state ? state.n : 0;
  const target = (state && state.target) || spec.target;
  const missing = state ? state.missing : Math.max(0, target - n);
  const unit = state && state.unit_cents != null ? state.unit_cents : tierPrice(spec, n);
  let status = state ? state.s : "open";
  if (spec.closed && status === "open") status = "closed";
  const labels = { open: "拼团中 Open", formed: "已成团 Formed", failed: "未成团 Failed", closed: "已结束 Closed" };
  const joinedQty = myOrders()[spec.gb] || 0;
  const maxQty = spec.max_qty || 5;
  const qty = Math.min(maxQty, ui.qty[spec.gb] || joinedQty || 1);
  ui.qty[spec.gb] = qty;
  const pct = Math.min(100, Math.round((n / target) * 100));
  const roomWide = spec.scope === "room";

  let countText;
  let countEn;
  if (status === "formed") {
    countText = roomWide ? `本场 ${n} 人已成团！` : `本小区 ${n} 位邻居已成团！`;
    countEn = `Group formed with ${n} ${roomWide ? "buyers" : "neighbours"} — orders confirmed`;
  } else if (status === "failed") {
    countText = `未能成团（${n}/${target}），订单已取消`;
    countEn = `The group did not form (${n}/${target}); orders are cancelled`;
  } else if (roomWide) {
    countText = `本场已有 ${n} 人参团，还差 ${missing} 人成团`;
    countEn = `${n} joined in this room · ${missing} more to form the group`;
  } else {
    countText = `本小区已有 ${n} 位邻居参团，还差 ${missing} 人成团`;
    countEn = `${n} neighbours in your community joined · ${missing} more to form the group`;
  }

  const tiers = (spec.tiers || []).map(([members, cents]) =>
    h("li", { class: n >= members ? "reached" : null }, `满${members}人 减${yuan(cents)} · ${members}+ save ${yuan(cents)}`));
  const bonus = spec.bonus_invites
    ? h("p", { class: state && state.b ? "note-ok" : "muted" },
      `邻里助力：一人邀请 ${spec.bonus_invites} 位邻居，全团每件再减 ${yuan(spec.bonus_cents)}`,
      state && state.b ? " ✓ 已生效 Active" : ` · Invite ${spec.bonus_invites} neighbours: everyone saves ${yuan(spec.bonus_cents)}`)
    : null;

  const stepper = h("span", { class: "stepper", role: "group", "aria-label": "数量 Quantity" },
    h("button", { type: "button", "aria-label": "减少 Fewer", disabled: qty <= 1,
      onclick: () => { ui.qty[spec.gb] = Math.max(1, qty - 1); renderGroupbuys(); } }, "−"),
    h("output", { class: "qty", "aria-live": "polite" }, String(qty)),
    h("button", { type: "button", "aria-label": "增加 More", disabled: qty >= maxQty,
      onclick: () => { ui.qty[spec.gb] = Math.min(maxQty, qty + 1); renderGroupbuys(); } }, "+"));

  const actions = h("div", { class: "actions" });
  const canJoin = (status === "open" || status === "formed") && !spec.closed;
  if (!group) {
    actions.append(h("p", { class: "muted" }, "参团前请先定位你的小区 Find your community to join"),
      h("button", { type: "button", class: "secondary", onclick: locate }, "找我的小区 Find my community"));
  } else if (joinedQty) {
    if (status === "open") {
      actions.append(stepper,
        h("button", { type: "button", class: "join", disabled: qty === joinedQty,
          onclick: () => join(spec, qty) }, `改为 ${qty} 件 Update`),
        h("button", { type: "button", class: "danger leave", onclick: () => leave(spec) }, "退出 Leave"));
    } else if (status === "formed") {
      actions.append(h("p", { class: "note-ok" }, `✓ 订单已确认 ×${joinedQty} Order confirmed`));
    }
  } else if (canJoin) {
    actions.append(stepper,
      h("button", { type: "button", class: "join grow", onclick: () => join(spec, qty) },
        `参团 Join · ${yuan(unit * qty)}`));
  }

  const invite = joinedQty && spec.bonus_invites && status === "open"
    ? linkRow(`${location.origin}/r/${encodeURIComponent(room)}?inviter=${encodeURIComponent(me())}`,
      "邀请邻居链接 Invite link")
    : null;

  return h("section", { class: "card gb", dataset: { gb: spec.gb, status } },
    h("div", { class: "gb-head" },
      h("span", { class: "gb-title" }, spec.product),
      h("span", { class: `state ${status}` }, labels[status] || status)),
    h("div", { class: "row" },
      h("span", { class: "price" }, yuan(unit)),
      unit < spec.price_cents ? h("span", { class: "was" }, yuan(spec.price_cents)) : null,
      h("span", { class: "muted" }, "/件 each"),
      !spec.closed && status === "open"
        ? h("span", { class: "muted", style: "margin-left:auto" }, "剩余 ",
          h("span", { dataset: { deadline: spec.deadline } }, clock(spec.deadline - now())))
        : null),
    group ? h("p", { class: "gb-count" }, countText) : null,
    group ? h("p", { class: "muted" }, countEn) : null,
    group ? h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0",
      "aria-valuemax": String(target), "aria-valuenow": String(n) }, h("span", { style: `width:${pct}%` })) : null,
    tiers.length ? h("ul", { class: "tiers" }, tiers) : null,
    bonus,
    joinedQty && status === "open" ? h("p", { class: "note-ok" }, `✓ 已参团 ×${joinedQty} You joined`) : null,
    actions,
    invite);
}

function renderGroupbuys() {
  const box = $("#groupbuys");
  const specs = [...channel.model.groupbuys.values()];
  const open = specs.filter((s) => !s.closed);
  const closed = specs.filter((s) => s.closed).slice(-2);
  fill(box, [...open.reverse(), ...closed.reverse()].map(gbCard));
}

function groupFromAck(ack) {
  const { t, id, gb, group, ...state } = ack;
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
    toast(`已参团 ×${qty} Joined`, "ok");
  } catch (err) {
    if (err.code === "no_community") renderGroupbuys();
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
    toast("已退出 Left the group", "ok");
  } catch (err) {
    if (err.code === "group_formed") toast("已成团，订单不能退出 The group formed: your order is confirmed");
    else toast(errorText(err));
  }
}

// -- community -------------------------------------------------------------------------------

function metres(a, b) {
  const rad = Math.PI / 180;
  const dlat = (b.lat - a.lat) * rad;
  const dlng = (b.lng - a.lng) * rad;
  const x = Math.sin(dlat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dlng / 2) ** 2;
  return 2 * 6371000 * Math.asin(Math.sqrt(x));
}

function renderCommunity() {
  const m = channel.model;
  const c = m.community;
  const fixed = !!(m.you && m.you.community);
  const name = $("#community-name");
  if (c) {
    fill(name, h("b", {}, c.name), c.pickup ? h("br") : null,
      c.pickup ? h("span", {}, `自提点 Pickup: ${c.pickup}`) : null);
    name.className = "";
  } else if (fixed) {
    fill(name, `小区 Community: ${m.you.community}`);
  } else {
    fill(name, "还未定位，参团前请先找到你的小区 Locate your community before joining a group buy");
    name.className = "muted";
  }
  $("#locate").hidden = fixed;
  $("#locate").parentElement.hidden = fixed;
  const box = $("#nearby");
  box.hidden = !ui.nearby;
  if (ui.nearby) {
    fill(box, ui.nearby.length
      ? [h("p", { class: "muted" }, "你不在任何小区内，请选择附近的小区 Outside every community: choose one nearby"),
        ...ui.nearby.map(({ community, distance }) =>
          h("button", { type: "button", onclick: () => choose(community.id) },
            h("span", {}, community.name),
            h("span", { class: "muted" }, distance != null ? `${Math.round(distance)} m` : "")))]
      : [h("p", { class: "muted" }, "附近 3 公里内没有合作小区 No community within 3 km")]);
  }
}

function locate() {
  if (!navigator.geolocation) {
    toast("此浏览器无法定位 This browser cannot share its location");
    return;
  }
  const button = $("#locate");
  button.disabled = true;
  navigator.geolocation.getCurrentPosition(async (pos) => {
    const here = { lat: pos.coords.latitude, lng: pos.coords.longitude };
    try {
      const ack = await channel.request("locate", here);
      if (ack.community) {
        ui.nearby = null;
        channel.model.community = ack.community;
        channel.changed("community", "groups", "groupbuys");
        toast(`你的小区 Your community: ${ack.community.name}`, "ok");
      } else {
        ui.nearby = (ack.nearby || []).map((community) => ({ community, distance: metres(here, community) }));
        renderCommunity();
      }
    } catch (err) {
      toast(errorText(err));
    } finally {
      button.disabled = false;
    }
  }, (err) => {
    button.disabled = false;
    toast(err.code === 1 ? "未获得定位权限 Location permission denied" : "无法获取位置 Location unavailable");
  }, { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 });
}

async function choose(id) {
  try {
    const ack = await channel.request("choose_community", { community: id });
    ui.nearby = null;
    channel.model.community = ack.community;
    channel.changed("community", "groups", "groupbuys");
  } catch (err) {
    toast(errorText(err));
  }
}

// -- cards ------------------------------------------------------------------------------------

function renderCards() {
  const { product, trace, testimonial } = channel.model.cards;
  const pc = $("#product");
  pc.hidden = !product;
  if (product) {
    const img = product.image_url
      ? h("img", { src: product.image_url, alt: product.name, loading: "lazy", referrerpolicy: "no-referrer",
        onerror: (e) => e.target.remove() })
      : null;
    const stock = product.stock == null ? null
      : product.stock === 0 ? h("span", { class: "state failed" }, "售罄 Sold out")
        : h("span", { class: "muted" }, `库存 ${product.stock} 件 in stock`);
    fill(pc, h("h2", {}, "商品 ", h("small", {}, "Product")),
      h("div", { class: "product" }, img,
        h("div", {}, h("p", { class: "gb-title" }, product.name),
          h("p", { class: "price" }, yuan(product.price_cents)), stock)));
  }
  renderTrace(trace);
  const tc = $("#testimonial");
  tc.hidden = !testimonial;
  if (testimonial) {
    fill(tc, h("h2", {}, "买家说 ", h("small", {}, "Testimonial")),
      h("blockquote", {}, `“${testimonial.text}”`, h("footer", {}, `— ${testimonial.author}`)));
  }
}

function readingsBlock(points, label) {
  const values = points.map((p) => p[1]);
  const last = values[values.length - 1];
  return h("div", { class: "readings" },
    sparkline(points, { width: 160, height: 40, label }),
    h("div", {}, h("div", {}, h("b", {}, num(last)), h("span", { class: "muted" }, " 最新 latest")),
      h("div", { class: "muted" }, `${num(Math.min(...values))} – ${num(Math.max(...values))}`)));
}

function renderTrace(trace) {
  const card = $("#trace");
  const sensors = Object.entries(channel.model.sensors).filter(([, pts]) => pts.length);
  card.hidden = !trace && !sensors.length;
  if (card.hidden) return;
  const parts = [h("h2", {}, "溯源 ", h("small", {}, "Traceability"))];
  if (trace) {
    parts.push(h("dl", { class: "kv" },
      h("dt", {}, "批次 Batch"), h("dd", {}, trace.batch),
      h("dt", {}, "产地 Origin"), h("dd", {}, trace.origin)));
    if (trace.readings && trace.readings.length) {
      parts.push(h("p", { class: "muted", style: "margin-top:8px" }, "冷链温度 Cold-chain readings (°C)"),
        readingsBlock(trace.readings, "冷链温度 cold-chain readings"));
    }
    if (trace.report_url && /^https?:\/\//.test(trace.report_url)) {
      parts.push(h("p", {}, h("a", { href: trace.report_url, target: "_blank", rel: "noopener noreferrer" },
        "检测报告 Test report ↗")));
    }
  }
  for (const [kind, points] of sensors) {
    parts.push(h("p", { class: "muted", style: "margin-top:8px" }, `实时 Live · ${kind}`),
      readingsBlock(points, kind));
  }
  fill(card, parts);
}

// -- share officer ----------------------------------------------------------------------------

function linkRow(url, label) {
  const input = h("input", { value: url, readonly: true, "aria-label": label,
    onfocus: (e) => e.target.select() });
  return h("div", {}, h("label", {}, label),
    h("div", { class: "link-row" }, input,
      h("button", { type: "button", class: "secondary small", onclick: async () => {
        toast(await copyText(url) ? "已复制 Copied" : "请长按复制 Long-press to copy", "ok");
      } }, "复制 Copy")));
}

function renderOfficer() {
  const m = channel.model;
  const o = m.officer;
  const body = $("#officer-body");
  const referred = m.referredBy ? h("p", { class: "muted" }, `推荐人 Referred by: ${m.referredBy}`) : null;
  if (o) {
    fill(body,
      h("p", {}, "你的邀请码 Your code"), h("p", { class: "code", id: "officer-code" }, o.code),
      h("dl", { class: "kv", style: "margin:8px 0" },
        h("dt", {}, "已赚佣金 Earned"), h("dd", { class: "money", id: "officer-earned" }, yuan(o.earned_cents)),
        h("dt", {}, "推荐人数 Referrals"), h("dd", {}, String(o.referrals ?? 0)),
        h("dt", {}, "排名 Rank"), h("dd", {}, o.rank ? `#${o.rank}` : "—")),
      o.links && o.links.room ? linkRow(o.links.room, "直播间链接 Room link") : null,
      o.links && o.links.clips ? linkRow(o.links.clips, "短视频链接 Clips link") : null,
      h("div", { class: "actions" },
        h("button", { type: "button", class: "ghost", onclick: refreshOfficer }, "刷新收益 Refresh earnings")),
      referred);
  } else {
    fill(body,
      h("p", { class: "muted" }, "参团后即可成为分享官：分享你的链接，邻居成团你赚佣金。"),
      h("p", { class: "muted" }, "Join a group buy, then share your link and earn commission when neighbours' groups form."),
      h("div", { class: "actions" },
        h("button", { type: "button", id: "officer-apply", onclick: applyOfficer }, "成为分享官 Become a share officer")),
      referred);
  }
}

async function applyOfficer() {
  try {
    const ack = await channel.request("officer_apply");
    channel.model.officer = { code: ack.code, links: ack.links, earned_cents: 0, referrals: 0 };
    channel.changed("officer");
    toast(ack.new ? "欢迎成为分享官！Welcome, share officer!" : "你已经是分享官 You are a share officer", "ok");
    await refreshOfficer();
  } catch (err) {
    toast(err.code === "not_a_buyer" ? "先参加一个拼团才能成为分享官 Join a group buy first" : errorText(err));
  }
}

async function refreshOfficer() {
  ui.officerAsked = Date.now();
  try {
    const ack = await channel.request("officer_me");
    const { t, id, ...officer } = ack;
    channel.model.officer = officer;
    channel.changed("officer");
  } catch (err) {
    if (err.code !== "not_a_buyer") toast(errorText(err));
  }
}

function renderLeaderboard() {
  const rows = channel.model.leaderboard || [];
  const list = $("#leaderboard");
  leaderboardList(list, rows, me());
  // Earnings moved: refresh ours, at most every 5 s.
  if (channel.model.officer && Date.now() - ui.officerAsked > 5000) refreshOfficer();
}

// -- ticking countdowns -------------------------------------------------------------------------


// -- wiring ---------------------------------------------------------------------------------------

const RENDER = {
  meta: () => showMeta(channel.model.meta),
  counts: renderCounts,
  comments: renderComments,
  question: renderQuestion,
  polls: renderPoll,
  cards: renderCards,
  sensors: () => renderTrace(channel.model.cards.trace),
  groupbuys: renderGroupbuys,
  groups: renderGroupbuys,
  community: renderCommunity,
  you: renderCommunity,
  officer: () => { renderOfficer(); renderLeaderboard(); },
  leaderboard: renderLeaderboard,
};

function start() {
  $("#composer").addEventListener("submit", sendComment);
  $("#like").addEventListener("click", tapLike);
  $("#locate").addEventListener("click", locate);
  const player = $("#player");
  player.addEventListener("playing", () => { $("#stage-note").hidden = true; });
  player.addEventListener("emptied", () => { $("#stage-note").hidden = false; });
  renderOfficer();
  renderLeaderboard();
  setInterval(tickDeadlines, 1000);

  if (!token) {
    banner("链接中没有令牌，请向主播索取直播间链接。No token in the link: ask the host for a room link.");
    $("#send").disabled = true;
    $("#like").disabled = true;
    fetchRoom().then(showMeta).catch((err) => {
      banner(`${$("#banner").textContent} ${roomErrorText(err)}`);
      $("#store").textContent = "";
    });
    return;
  }
  bindChannel(channel, RENDER);
  channel.on("snapshot", (s) => {
    if (s.mine) {
      try { localStorage.setItem(storeKey(), JSON.stringify(s.mine)); } catch { /* private mode */ }
    }
    banner("");
    if (s.recovered === false) toast("已重新同步 Resynchronised", "ok");
  });
  fetchRoom().then((meta) => { if (!channel.model.meta) showMeta(meta); }).catch(() => {});
  const stage = mountStage({ channel, room, token, main: $("#player"), guests: $("#guests"),
                            note: $("#stage-note") });
  window.livecore = { channel, stage }; // for diagnostics and the browser tests
  const ask = $("#costream");
  channel.on("snapshot", () => { ask.hidden = (channel.model.you || {}).role !== "koc"; });
  ask.addEventListener("click", () => {
    channel.request("costream_request", {})
      .then(() => toast("已申请，等待主播同意 Asked: waiting for the host", "ok"))
      .catch((e) => toast(errorText(e)));
  });
  channel.on("event", (ev) => {
    const me = (channel.model.you || {}).user;
    if (ev.user !== me) return;
    if (ev.t === "costream_accepted") { ask.hidden = true; toast("主播已同意，开始连麦 Accepted: you are on air", "ok"); }
    if (ev.t === "costream_declined") toast("主播暂未同意 The host declined");
    if (ev.t === "costream_ended") ask.hidden = false;
  });
  channel.connect();
}

start();
