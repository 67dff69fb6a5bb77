// The room's live dashboard (/d/{room}#token=<host or admin token>): viewers over
// time, comments per minute, likes and votes, orders, per-compound group
// progress and the top officers, from GET /api/rooms/{room}/dashboard every 2 s.
// The charts open with the live so far: the first answer's `history` (a sample
// every few seconds since the live began) is drawn before the live points.
import { lineChart } from "/static/charts.js";
import { linkToken, roomId } from "/static/boot.js";
import { labelPage, t } from "/static/i18n.js";
import { learnNames, nameOf } from "/static/session.js";
import { $, banner, fill, h, loadCommunityNames, pollWithToken, showBadge, showMeta, yuan } from "/static/room.js";

const EVERY_MS = 2000;
const room = roomId();
const token = linkToken();
const names = {};
let charts = null;
let last = null;
let seeded = false;

function communityName(id) {
  return id === "room" ? t("host.groups.room") : names[id] || id;
}

function makeCharts() {
  charts = {
    viewers: lineChart($("#c-viewers"), [{ label: t("dash.viewers"), color: "#c2410c" }]),
    comments: lineChart($("#c-comments"), [{ label: t("dash.comments"), color: "#0369a1" }], { bars: true }),
    engage: lineChart($("#c-engage"), [{ label: t("dash.likes"), color: "#be123c" }, { label: t("dash.votes"), color: "#7c3aed" }]),
    orders: lineChart($("#c-orders"), [{ label: t("dash.buyers"), color: "#15803d" }, { label: t("dash.items"), color: "#a16207" }]),
  };
  window.livecore = { charts };
}

function render(d, fresh = true) {
  last = d;
  showMeta(d.room);
  $("#title").textContent = `${t("dash.title")} · ${d.room.title}`;
  showBadge(d.room.status === "live" ? "live" : d.room.status === "ended" ? "ended" : "scheduled");
  $("#k-viewers").textContent = d.viewers;
  $("#k-likes").textContent = d.likes;
  $("#k-buyers").textContent = d.orders.members;
  $("#k-items").textContent = d.orders.items;
  $("#k-sales").textContent = yuan(d.orders.sales_cents);
  $("#k-pending").textContent = yuan(d.orders.pending_cents);
  $("#k-formed").textContent = d.orders.formed;
  if (d.toolkit) {
    $("#k-entrants").textContent = d.toolkit.draw_entrants;
    $("#k-reserved").textContent = d.toolkit.reservations;
    $("#k-pickups").textContent = d.toolkit.pickups_redeemed;
  }
  $("#k-votes").textContent = d.votes;
  $("#k-flash").textContent = d.flash ? `${d.flash.sold}/${d.flash.stock}` : "—";
  $("#k-flash").title = d.flash ? `${d.flash.product} · ${yuan(d.flash.sales_cents)}` : "";
  $("#k-coupons").textContent = (d.coupons || []).reduce((n, c) => n + c.claimed, 0);
  if (!seeded && Array.isArray(d.history)) {
    seeded = true;
    // [at, viewers, likes, votes, members, items], oldest first; before this answer
    const past = d.history.filter((row) => Array.isArray(row) && row.length === 6 && row[0] < d.at);
    const col = (i) => past.map((row) => row[i]);
    charts.viewers.set(col(0), [col(1)]);
    charts.engage.set(col(0), [col(2), col(3)]);
    charts.orders.set(col(0), [col(4), col(5)]);
  }
  if (fresh) {
    const at = d.at;
    charts.viewers.push(at, [d.viewers]);
    charts.engage.push(at, [d.likes, d.votes]);
    charts.orders.push(at, [d.orders.members, d.orders.items]);
  }
  charts.comments.set(d.comments_per_minute.map(([x]) => x), [d.comments_per_minute.map(([, c]) => c)]);
  const rows = [...d.groups].sort((a, b) => b.n - a.n).slice(0, 30);
  fill($("#groups"), rows.length ? rows.map((g) => {
    const pct = Math.min(100, Math.round((g.n / Math.max(1, g.target)) * 100));
    return h("li", { dataset: { group: g.group, gb: g.gb } },
      h("div", { class: "gb-head" }, h("b", {}, `${communityName(g.group)} · ${g.product}`),
        h("span", { class: `state ${g.s}` }, t(`gb.s.${g.s}`))),
      h("div", { class: "progress" }, h("span", { style: `width:${pct}%` })),
      h("div", { class: "muted" }, `${t("host.groups.row", { n: g.n, target: g.target, q: g.q })} · ${yuan(g.sales_cents)}`),
      g.guests === undefined ? null
        : h("div", { class: "muted members-split" }, t("dash.members.split", { guests: g.guests, verified: g.verified })));
  }) : h("li", { class: "muted" }, t("dash.none")));
  learnNames(room, d.officers.map(([u]) => u), () => last && render(last, false));
  fill($("#officers"), d.officers.length ? d.officers.map(([u, c], i) => h("li", {},
    h("span", {}, h("span", { class: "rank" }, `${i + 1}.`), nameOf(u)), h("span", { class: "money" }, yuan(c))))
    : h("li", { class: "muted" }, t("lb.none")));
  fill($("#polls"), d.polls.length ? d.polls.map((p) => {
    const total = p.counts.reduce((a, b) => a + b, 0);
    return h("div", { class: "poll-item" }, h("b", {}, p.question), p.options.map((o, i) => {
      const pct = total ? Math.round((p.counts[i] / total) * 100) : 0;
      return h("div", {}, h("div", { class: "gb-head" }, h("span", {}, o), h("span", { class: "money" }, `${pct}% · ${p.counts[i]}`)),
        h("div", { class: "progress" }, h("span", { style: `width:${pct}%` })));
    }));
  }) : h("p", { class: "muted" }, t("dash.none")));
}

async function start() {
  labelPage(() => {
    charts.viewers.relabel([t("dash.viewers")]);
    charts.comments.relabel([t("dash.comments")]);
    charts.engage.relabel([t("dash.likes"), t("dash.votes")]);
    charts.orders.relabel([t("dash.buyers"), t("dash.items")]);
    if (last) render(last, false);
  });
  showBadge("scheduled");
  makeCharts();
  if (!token) { banner(t("dash.notoken")); return; }
  await loadCommunityNames(names);
  await pollWithToken(`/api/rooms/${encodeURIComponent(room)}/dashboard`, token, render, EVERY_MS);
}

start();
