// The viewer page's flash sale and coupons, right above the dock (one thumb):
// the 限时秒杀 card (countdown to the start, stock left, the 抢 button, sold-out
// and ended states, what this viewer got) and the coupon chips (claim while the
// live is on; a claimed coupon goes with the next 抢 when tapped).
import { t } from "/static/i18n.js";
import { $, clock, errorText, fill, h, now, toast, yuan } from "/static/room.js";
import { noteFlash } from "/static/flashmodel.js";
import { channel } from "/static/viewstate.js";

let taps = 0;
let chosen = null; // the claimed coupon the next 抢 hands in

function phase(f) {
  if (f.s === "ended" || now() >= f.ends_at) return "ended";
  if (f.s === "sold_out" || f.left <= 0) return "sold_out";
  return now() < f.starts_at ? "countdown" : "open";
}

const BUTTON = { countdown: "flash.grab", open: "flash.grab", sold_out: "flash.soldout", ended: "flash.ended" };

export function renderFlash() {
  const box = $("#flash");
  const f = channel && channel.model.flash;
  if (!f) { box.hidden = true; return; }
  const p = phase(f);
  const mine = channel.model.flashMine[f.fs] || 0;
  const sold = Math.max(0, f.stock - f.left);
  const timer = p === "countdown" ? `${t("flash.starts")} ${clock(f.starts_at - now())}`
    : p === "open" ? `${t("flash.ends")} ${clock(f.ends_at - now())}` : "";
  const coupon = chosen && channel.model.coupons.get(chosen);
  box.hidden = false;
  box.dataset.phase = p;
  fill(box,
    h("div", { class: "flash-head" }, h("b", {}, t("flash.title")), h("span", { class: "flash-time" }, timer)),
    h("div", { class: "flash-row" },
      h("div", { class: "flash-main" },
        h("p", { class: "flash-name" }, f.product),
        h("p", { class: "flash-price" }, h("span", { class: "price money" }, yuan(f.price_cents)),
          h("span", { class: "muted" }, ` ${t("flash.limit", { n: f.limit })}`)),
        h("div", { class: "progress" }, h("span", { style: `width:${f.stock ? Math.round((100 * sold) / f.stock) : 0}%` })),
        h("p", { class: "muted flash-left" }, t("flash.left", { n: f.left }),
          mine ? h("span", { class: "note-ok" }, ` · ${t("flash.bought", { n: mine })}`) : null),
        coupon ? h("p", { class: "muted" }, t("coupon.use", { title: coupon.title })) : null),
      h("button", { type: "button", class: "grab", id: "flash-grab", disabled: p !== "open" || mine >= f.limit,
        onclick: grab }, t(BUTTON[p]))));
}

async function grab(e) {
  const f = channel.model.flash;
  const button = e.currentTarget;
  button.disabled = true;
  taps += 1;
  const fields = { fs: f.fs, qty: 1, key: `${f.fs}-${taps}` };
  if (chosen) fields.coupon = chosen;
  try {
    const ack = await channel.request("flash_buy", fields);
    channel.model.flashMine[f.fs] = ack.mine;
    noteFlash(channel.model, { fs: ack.fs, v: ack.v, sold: ack.sold, left: ack.left, s: ack.s });
    if (ack.coupon) chosen = null;
    toast(t("flash.bought", { n: ack.mine }), "ok");
  } catch (err) {
    toast(errorText(err));
  } finally {
    renderFlash();
    renderCoupons();
  }
}

function couponNote(c, mine, live) {
  if (mine) return t("coupon.claimed");
  if (c.left <= 0) return t("coupon.gone");
  if (!live) return t("coupon.live");
  if (c.task === "watch") return t("coupon.task.watch", { n: c.watch_min });
  if (c.task === "comment") return t("coupon.task.comment");
  if (c.task === "groupbuy") return t("coupon.task.groupbuy");
  return t("coupon.claim");
}

export function renderCoupons() {
  const box = $("#coupons");
  const list = channel ? [...channel.model.coupons.values()] : [];
  if (!list.length) { box.hidden = true; return; }
  const live = !!(channel.model.meta && channel.model.meta.status === "live");
  box.hidden = false;
  fill(box, list.map((c) => {
    const mine = channel.model.couponsMine[c.cp] || 0;
    return h("button", {
      type: "button", class: `coupon-chip${mine ? " claimed" : ""}`, dataset: { cp: c.cp },
      "aria-pressed": String(chosen === c.cp), disabled: !mine && (c.left <= 0 || !live),
      onclick: (e) => (mine ? choose(c.cp) : claim(c, e.currentTarget)),
    },
    h("b", {}, t("coupon.off", { yuan: yuan(c.off_cents) })),
    h("span", {}, c.min_cents ? t("coupon.min", { yuan: yuan(c.min_cents) }) : c.title),
    h("small", {}, couponNote(c, mine, live)));
  }));
}

function choose(cp) {
  chosen = chosen === cp ? null : cp;
  renderCoupons();
  renderFlash();
}

async function claim(c, button) {
  button.disabled = true;
  try {
    const ack = await channel.request("coupon_claim", { cp: c.cp, key: `${c.cp}-${(channel.model.couponsMine[c.cp] || 0) + 1}` });
    channel.model.couponsMine[c.cp] = ack.mine;
    const known = channel.model.coupons.get(c.cp);
    if (known && ack.v > known.v) channel.model.coupons.set(c.cp, { ...known, v: ack.v, claimed: ack.claimed, left: ack.left });
    chosen = c.cp;
    toast(t("coupon.claimed"), "ok");
  } catch (err) {
    toast(errorText(err));
  } finally {
    renderCoupons();
    renderFlash();
  }
}

/** Re-render on the model's changes and tick the countdown each second. */
export function wireFlash() {
  channel.on("change", (changed) => {
    if (changed.has("flash")) renderFlash();
    if (changed.has("coupons") || changed.has("meta")) renderCoupons();
  });
  setInterval(() => { if (channel && channel.model.flash) renderFlash(); }, 1000);
}
