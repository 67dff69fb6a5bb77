// The viewer page's bottom sheets: traceability with live sensor readings in
// readable names and units, the testimonial wall, all group buys, the invite
// link, the compound finder and the nickname.
import { t } from "/static/i18n.js";
import { knowName, savedName, setNickname } from "/static/session.js";
import { $, copyText, errorText, fill, h, num, sparkline, toast, yuan } from "/static/room.js";
import { countLine, gbState } from "/static/dock.js";
import { channel, me, room, session, ui } from "/static/viewstate.js";

const WALL_MAX = 30;
const SENSOR_UNITS = { c: "°C", pct: "%", lux: "lx", ppm: "ppm" };

export function openSheet(kind, title, body) {
  ui.sheet = kind;
  $("#sheet").dataset.kind = kind;
  $("#sheet-title").textContent = title;
  fill($("#sheet-body"), body);
  $("#sheet").hidden = false;
  $("#sheet-backdrop").hidden = false;
}

export function closeSheet() {
  ui.sheet = null;
  $("#sheet").hidden = true;
  $("#sheet-backdrop").hidden = true;
}

export function rerenderSheet() {
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

/** The pinned batch's life journey (its signed records), fetched once per batch. */
const journeys = new Map();
const JOURNEYS_MAX = 8;

async function loadJourney(batch) {
  if (journeys.has(batch)) return;
  if (journeys.size >= JOURNEYS_MAX) journeys.delete(journeys.keys().next().value);
  journeys.set(batch, null);
  try {
    const res = await fetch(`/api/batches/${encodeURIComponent(batch)}`);
    if (!res.ok) return;
    const body = await res.json();
    journeys.set(batch, Array.isArray(body.records) ? body.records : []);
    if (ui.sheet === "trace") openTrace();
  } catch { /* the card's own fields are still shown */ }
}

function journeyBlock(records) {
  return h("ol", { class: "journey" }, records.map((r) => h("li", { dataset: { type: r.type } },
    h("b", {}, t(`trace.ev.${r.type}`)),
    h("div", { class: "when" }, `${new Date(r.at * 1000).toLocaleDateString(document.documentElement.lang)} · ${(r.place && r.place.name) || ""}`))));
}

export function openTrace() {
  const trace = channel.model.cards.trace;
  const parts = [];
  if (trace) {
    if (trace.verified) parts.push(h("p", {}, h("span", { class: "trace-verified" }, `✓ ${t("trace.verified")}`)));
    parts.push(h("dl", { class: "kv" },
      trace.product ? [h("dt", {}, t("trace.product")), h("dd", {}, trace.product)] : null,
      h("dt", {}, t("trace.batch")), h("dd", {}, trace.batch),
      h("dt", {}, t("trace.origin")), h("dd", {}, trace.origin),
      trace.stage ? [h("dt", {}, t("trace.stage")), h("dd", {}, t(`trace.ev.${trace.stage}`))] : null));
    if (trace.url) {
      const records = journeys.get(trace.batch);
      if (records === undefined) loadJourney(trace.batch);
      if (records && records.length) parts.push(h("h3", {}, t("trace.journey")), journeyBlock(records));
    }
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
  if (trace && typeof trace.url === "string" && trace.url.startsWith("/t/")) {
    parts.push(h("a", { class: "button trace-page", href: trace.url, target: "_blank", rel: "noopener" }, t("trace.open")));
  }
  openSheet("trace", t("trace.title"), parts);
}

export async function loadWall() {
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

export function renderWallCount() {
  const btn = $("#wall-open");
  btn.dataset.count = ui.wall.length || "";
  if (ui.sheet === "wall") openWall();
}

export function openWall() {
  const items = [...ui.wall].reverse();
  openSheet("wall", t("wall.title"), items.length
    ? h("ul", { class: "wall" }, items.map((w) => h("li", {},
      h("blockquote", {}, `“${w.text}”`, h("footer", {}, `— ${w.author}`)))))
    : h("p", { class: "muted" }, t("wall.empty")));
}

export function openAllGroupbuys() {
  const specs = [...channel.model.groupbuys.values()].reverse();
  openSheet("groupbuys", t("gb.more", { n: specs.length }), h("ul", { class: "list" }, specs.map((spec) => {
    const g = gbState(spec);
    return h("li", { dataset: { gb: spec.gb } },
      h("div", { class: "grow" }, h("b", {}, spec.product), h("div", { class: "muted" }, countLine(spec, g))),
      h("span", { class: "price" }, yuan(g.unit)));
  })));
}

export function openInvite(spec) {
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

export function openCommunity() {
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
export async function relocate() {
  const m = channel.model;
  if (m.community || (m.you && m.you.community) || !navigator.geolocation || !navigator.permissions) return;
  try {
    if (localStorage.getItem(LOCATED) !== "1") return;
    const status = await navigator.permissions.query({ name: "geolocation" });
    if (status.state === "granted") locate({ quiet: true });
  } catch { /* ask again with the button */ }
}

export function locate({ quiet = false } = {}) {
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

const NICK_ASKED = "livecore:nick-asked";

/** A guest with no nickname is asked for one once, after their first comment or join
 * (their earlier comments relabel too: names go by user). The ask is a bar above the
 * composer, not a sheet: it never takes a tap meant for something else. */
export function askNickOnce() {
  if (!session || !session.guest || savedName()) return;
  try {
    if (localStorage.getItem(NICK_ASKED) === "1") return;
    localStorage.setItem(NICK_ASKED, "1");
  } catch { return; }
  const bar = $("#nick-ask");
  if (!bar) return;
  bar.hidden = false;
  $("#nick-ask-go").onclick = () => { bar.hidden = true; openNick({ ask: true }); };
  $("#nick-ask-close").onclick = () => { bar.hidden = true; };
}

export function openNick({ ask = false } = {}) {
  const input = h("input", { id: "nick-input", maxlength: "20", value: savedName(), placeholder: t("nick.title") });
  openSheet("nick", t("nick.title"), [
    h("p", { class: "muted" }, t(ask ? "nick.ask" : "nick.hint")),
    h("form", { class: "link-row", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const name = await setNickname(room, session, input.value);
        knowName(me(), name);
        channel.emit("names"); // the page relabels comments
        closeSheet();
        toast(t("nick.saved"), "ok");
      } catch (err) { toast(errorText(err)); }
    } }, input, h("button", { type: "submit", id: "nick-save" }, t("nick.save")))]);
}

