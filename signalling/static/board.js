// The brand board (/board#token=<admin token>), 总部大屏: every recent room,
// sales, buyers and group progress per compound, the top officers across rooms,
// from GET /api/board every 3 s.
import { lineChart } from "/static/charts.js";
import { linkToken, withToken } from "/static/boot.js";
import { labelPage, t } from "/static/i18n.js";
import { nameOf } from "/static/session.js";
import { $, banner, fill, h, loadCommunityNames, pollWithToken, timeOfDay, yuan } from "/static/room.js";

const EVERY_MS = 3000;
const token = linkToken();
const names = {};
let chart = null;
let last = null;

/** The one display name the pages use: the nickname, else 邻居xxxx for a guest. */
function displayName(d, user) {
  return (d.names && d.names[user]) || nameOf(user);
}

function render(d, fresh = true) {
  last = d;
  $("#k-sales").textContent = yuan(d.totals.sales_cents);
  $("#k-members").textContent = d.totals.members;
  $("#k-viewers").textContent = d.totals.viewers;
  $("#k-live").textContent = d.totals.live;
  $("#updated").textContent = timeOfDay(d.at * 1000);
  if (fresh) chart.push(d.at, [d.totals.sales_cents / 100, d.totals.members]);
  fill($("#communities"), d.communities.slice(0, 50).map((c) => h("tr", { dataset: { community: c.community } },
    h("td", {}, c.community === "room" ? t("host.groups.room") : names[c.community] || c.community),
    h("td", {}, String(c.members)),
    h("td", { class: "money" }, yuan(c.sales_cents)),
    h("td", {}, h("div", { class: "progress" }, h("span", { style: `width:${Math.round(c.progress * 100)}%` })),
      h("span", { class: "muted" }, `${c.formed}/${c.groups}`)))));
  fill($("#rooms"), d.rooms.map((r) => h("tr", { dataset: { room: r.id } },
    h("td", {}, h("a", { href: withToken(`/d/${encodeURIComponent(r.id)}`) }, r.title)),
    h("td", {}, t(r.status === "live" ? "live" : r.status === "ended" ? "ended" : "scheduled")),
    h("td", {}, String(r.viewers)),
    h("td", { class: "money" }, yuan(r.sales_cents)))));
  fill($("#officers"), d.officers.length ? d.officers.map(([u, c], i) => h("li", {},
    h("span", {}, h("span", { class: "rank" }, `${i + 1}.`), displayName(d, u)), h("span", { class: "money" }, yuan(c))))
    : h("li", { class: "muted" }, t("lb.none")));
}

async function start() {
  labelPage(() => { chart.relabel([t("board.sales"), t("board.members")]); if (last) render(last, false); });
  chart = lineChart($("#c-sales"), [{ label: t("board.sales"), color: "#c2410c" }, { label: t("board.members"), color: "#15803d" }]);
  window.livecore = { charts: { sales: chart } };
  if (!token) { banner(t("dash.notoken")); return; }
  await loadCommunityNames(names);
  await pollWithToken("/api/board", token, render, EVERY_MS);
}

start();
