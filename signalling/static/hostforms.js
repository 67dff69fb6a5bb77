// The host console's forms: polls, product / traceability / testimonial cards,
// opening a group buy (prices typed in 元 go out as integer cents), commission
// levels and the guest-entry switch. Every form clears after it is accepted.
import { t } from "/static/i18n.js";
import { $, $$, centsFromYuan, errorText, fill, h, now, sparkline, tickDeadlines, toast } from "/static/room.js";
import { act, channel, room, token } from "/static/hostctx.js";

const MAX_OPTIONS = 6;
const MAX_TIERS = 5;
const READING_STEP_S = 600;
const POLL_DURATIONS = [0, 30, 60, 120, 300, 600, 1800];

export function optionInput(value = "") {
  const row = h("div", { class: "option-row" },
    h("input", { class: "poll-option", maxlength: "60", required: true, value,
      "aria-label": t("host.poll.option"), placeholder: t("host.poll.option") }),
    h("button", { type: "button", class: "ghost small", "aria-label": t("host.delete"),
      onclick: () => { row.remove(); optionButtons(); } }, "×"));
  return row;
}

export function optionButtons() {
  const rows = $$("#poll-options .option-row");
  rows.forEach((row) => { row.querySelector("button").disabled = rows.length <= 2; });
  $("#poll-add").disabled = rows.length >= MAX_OPTIONS;
}

export async function openPoll(ev) {
  ev.preventDefault();
  const question = $("#poll-question").value.trim();
  const options = $$(".poll-option").map((i) => i.value.trim()).filter(Boolean);
  if (options.length < 2) { toast(t("host.poll.two")); return; }
  const fields = { question, options };
  const duration = Number($("#poll-duration").value);
  if (duration) fields.duration_s = duration;
  await act($("#poll-open"), "poll_open", fields, () => {
    toast(t("host.poll.opened"), "ok");
    $("#poll-form").reset();
    fill($("#poll-options"), optionInput(), optionInput());
    optionButtons();
  });
}

export function renderPolls() {
  const polls = [...channel.model.polls.values()].reverse();
  const box = $("#polls");
  if (!polls.length) { fill(box, h("p", { class: "muted" }, t("host.poll.none"))); return; }
  fill(box, polls.slice(0, 4).map((p) => {
    const counts = p.counts || p.options.map(() => 0);
    const total = counts.reduce((a, b) => a + b, 0);
    const open = p.status === "open";
    return h("div", { class: "poll-item", dataset: { poll: p.poll } },
      h("div", { class: "gb-head" }, h("b", {}, p.question),
        h("span", { class: `state ${open ? "open" : "closed"}` }, t(open ? "poll.open" : "poll.closed"))),
      p.options.map((text, i) => {
        const pct = total ? Math.round((counts[i] / total) * 100) : 0;
        return h("div", {},
          h("div", { class: "gb-head" }, h("span", {}, text), h("span", { class: "money" }, `${pct}% · ${counts[i] || 0}`)),
          h("div", { class: "progress" }, h("span", { style: `width:${pct}%` })));
      }),
      h("div", { class: "row" },
        h("span", { class: "muted" }, t("poll.votes", { n: total })),
        open && p.closes_at ? h("span", { class: "muted" }, `${t("gb.left")} `, h("span", { dataset: { deadline: p.closes_at } }, "")) : null,
        open ? h("button", { type: "button", class: "danger small", style: "margin-left:auto",
          onclick: (e) => act(e.currentTarget, "poll_close", { poll: p.poll }) }, t("host.poll.close")) : null));
  }));
  tickDeadlines();
}

function readingsFrom(text) {
  const values = text.split(/[\s,，;]+/).filter(Boolean).map(Number);
  if (values.some((v) => !Number.isFinite(v))) return null;
  const end = Math.floor(now());
  return values.slice(-50).map((v, i, all) => [end - (all.length - 1 - i) * READING_STEP_S, v]);
}

export async function pinProduct(ev) {
  ev.preventDefault();
  const price = centsFromYuan($("#pc-price").value);
  if (price == null) { toast(t("host.gb.price.bad")); return; }
  const card = { kind: "product", name: $("#pc-name").value.trim(), price_cents: price };
  const stock = $("#pc-stock").value.trim();
  if (stock) card.stock = Number(stock);
  const image = $("#pc-image").value.trim();
  if (image) card.image_url = image;
  await act(ev.submitter, "card", card, () => { toast(t("host.product.pinned"), "ok"); $("#product-form").reset(); });
}

export async function pinTrace(ev) {
  ev.preventDefault();
  const card = { kind: "trace", batch: $("#tc-batch").value.trim(), origin: $("#tc-origin").value.trim() };
  const report = $("#tc-report").value.trim();
  if (report) card.report_url = report;
  const text = $("#tc-readings").value.trim();
  if (text) {
    const readings = readingsFrom(text);
    if (!readings) { toast(t("host.trace.bad")); return; }
    card.readings = readings;
  }
  await act(ev.submitter, "card", card, () => {
    toast(t("host.trace.pinned"), "ok");
    $("#trace-form").reset();
    fill($("#tc-preview"));
  });
}

/** One tap: a registered batch (一键溯源) becomes the room's trace card, its readings live. */
export async function pinBatch(ev) {
  ev.preventDefault();
  const batch = $("#bp-batch").value.trim();
  const button = ev.submitter;
  button.disabled = true;
  try {
    await channel.request("batch_pin", { batch });
    toast(t("host.batch.pinned"), "ok");
    $("#batch-form").reset();
  } catch (err) {
    if (err.code !== "batch_not_found") { toast(errorText(err)); return; }
    // Not the shopper's sentence: the host can register the batch right here.
    toast(t("host.batch.missing"));
    $("#batch-new").open = true;
    $("#bn-id").value = batch;
    $("#bn-product").focus();
  } finally {
    button.disabled = false;
  }
}

/** Register a new batch (POST /api/batches, record 0 of its chain), then pin it. */
export async function registerBatch(ev) {
  ev.preventDefault();
  const button = ev.submitter;
  const batch = $("#bn-id").value.trim();
  const body = { id: batch, product: $("#bn-product").value.trim(), brand: $("#bn-brand").value.trim(),
    origin: $("#bn-origin").value.trim(), room };
  button.disabled = true;
  try {
    const res = await fetch("/api/batches", { method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify(body) });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) { toast(errorText(answer)); return; }
    await channel.request("batch_pin", { batch });
    toast(t("host.batch.new.done"), "ok");
    $("#batch-new-form").reset();
    $("#batch-new").open = false;
  } catch (err) {
    toast(errorText(err));
  } finally {
    button.disabled = false;
  }
}

export function previewReadings() {
  const readings = readingsFrom($("#tc-readings").value.trim());
  fill($("#tc-preview"), readings && readings.length ? sparkline(readings, { label: "preview" }) : null);
}

export async function pinTestimonial(ev) {
  ev.preventDefault();
  const card = { kind: "testimonial", author: $("#tm-author").value.trim(), text: $("#tm-text").value.trim() };
  await act(ev.submitter, "card", card, () => { toast(t("host.testimonial.pinned"), "ok"); $("#testimonial-form").reset(); });
}

export function tierInput() {
  const row = h("div", { class: "option-row tier" },
    h("input", { class: "tier-members", type: "number", min: "2", max: "10000", placeholder: t("host.gb.members"),
      "aria-label": t("host.gb.members"), required: true }),
    h("input", { class: "tier-discount", inputmode: "decimal", placeholder: t("host.gb.discount"),
      "aria-label": t("host.gb.discount"), required: true }),
    h("button", { type: "button", class: "ghost small", "aria-label": t("host.delete"),
      onclick: () => { row.remove(); tierButtons(); } }, "×"));
  return row;
}

export function tierButtons() {
  $("#gb-tier-add").disabled = $$("#gb-tiers .tier").length >= MAX_TIERS;
}

export async function openGroupbuy(ev) {
  ev.preventDefault();
  const price = centsFromYuan($("#gb-price").value);
  if (price == null) { toast(t("host.gb.price.bad")); return; }
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
    if (!members || cents == null) { toast(t("host.gb.tier.bad")); return; }
    tiers.push([members, cents]);
  }
  if (tiers.length) fields.tiers = tiers.sort((a, b) => a[0] - b[0]);
  const invites = Number($("#gb-bonus-invites").value || 0);
  const bonus = centsFromYuan($("#gb-bonus").value || "0");
  if (invites && bonus) { fields.bonus_invites = invites; fields.bonus_cents = bonus; }
  else if (invites || bonus) { toast(t("host.gb.bonus.bad")); return; }
  await act($("#gb-open"), "groupbuy_open", fields, () => {
    toast(t("host.gb.opened"), "ok");
    $("#gb-form").reset();
    fill($("#gb-tiers"));
    tierButtons();
    $("#groups-card").open = true;
  });
}

export async function setCommission(ev) {
  ev.preventDefault();
  const l1 = Math.round(Number($("#cm-l1").value) * 100);
  const l2 = Math.round(Number($("#cm-l2").value) * 100);
  if (!Number.isFinite(l1) || !Number.isFinite(l2) || l1 < 0 || l2 < 0 || l1 + l2 > 10000) {
    toast(t("host.commission.bad"));
    return;
  }
  await act(ev.submitter, "commission_set", { level1_bp: l1, level2_bp: l2 }, (ack) => {
    const el = $("#cm-current");
    el.hidden = false;
    el.textContent = t("host.commission.current", { l1: ack.level1_bp / 100, l2: ack.level2_bp / 100 });
    toast(t("host.commission.saved"), "ok");
  });
}

export async function loadGuests() {
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/settings`);
    if (res.ok) $("#guests-toggle").checked = !!(await res.json()).guests;
  } catch { /* shown as on */ }
}

export async function setGuests(ev) {
  const on = ev.currentTarget.checked;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/settings`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ guests: on }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw body;
    toast(t(body.guests ? "host.guests.on" : "host.guests.off"), "ok");
  } catch (err) {
    ev.currentTarget.checked = !on;
    toast(errorText(err));
  }
}

export function durationOptions() {
  const select = $("#poll-duration");
  const chosen = select.value;
  fill(select, POLL_DURATIONS.map((s) => h("option", { value: s ? String(s) : "" },
    !s ? t("host.poll.nolimit") : s < 60 ? t("host.poll.s", { n: s }) : t("host.poll.min", { n: s / 60 }))));
  select.value = chosen;
}
