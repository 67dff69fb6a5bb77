// The host console's flash sale (秒杀) and coupons: a sheet to start a flash sale
// on the pinned product (price typed in 元, stock, per-buyer limit, countdown,
// minutes) with its live figures (sold / stock, state, countdown) and the stop
// button; a sheet to create coupons (quota, per buyer, optional task) with each
// coupon's claimed / quota.
import { t } from "/static/i18n.js";
import { $, centsFromYuan, clock, fill, h, now, toast, yuan } from "/static/room.js";
import { act, channel } from "/static/hostctx.js";

const STATE = { open: "live", sold_out: "flash.soldout", ended: "flash.ended" };

export function renderHostFlash() {
  const card = channel.model.cards.product;
  $("#flash-product").textContent = card && card.name
    ? t("host.flash.product", { name: card.name, yuan: yuan(card.price_cents) }) : t("host.flash.nopin");
  $("#fl-start").disabled = !(card && card.name);
  const f = channel.model.flash;
  const box = $("#flash-figures");
  if (!f) { box.hidden = true; return; }
  const ended = f.s === "ended" || now() >= f.ends_at;
  const waiting = !ended && now() < f.starts_at;
  const sold = Math.max(0, f.stock - f.left);
  box.hidden = false;
  fill(box,
    h("b", { class: "money" }, t("host.flash.sold", { sold, stock: f.stock })),
    h("span", { class: `state ${ended ? "closed" : "open"}` },
      t(ended ? "flash.ended" : STATE[f.s] || "live")),
    waiting ? h("span", { class: "countdown" }, `${t("flash.starts")} ${clock(f.starts_at - now())}`)
      : !ended ? h("span", { class: "countdown" }, `${t("flash.ends")} ${clock(f.ends_at - now())}`) : null,
    ended ? null : h("button", { type: "button", class: "danger small", id: "fl-stop",
      onclick: (e) => act(e.currentTarget, "flash_stop", { fs: f.fs }) }, t("host.flash.stop")));
}

export function renderHostCoupons() {
  const list = [...channel.model.coupons.values()];
  fill($("#coupon-list"), list.map((c) => h("li", { dataset: { cp: c.cp } },
    h("b", {}, c.title), " ", h("span", { class: "money" }, t("coupon.off", { yuan: yuan(c.off_cents) })),
    " · ", h("span", { class: "coupon-claimed" }, t("host.coupon.claimed", { claimed: c.claimed, quota: c.quota })))));
}

async function startFlash(ev) {
  ev.preventDefault();
  const price = centsFromYuan($("#fl-price").value);
  if (price == null) { toast(t("host.gb.price.bad")); return; }
  const fields = { price_cents: price, stock: Number($("#fl-stock").value), limit: Number($("#fl-limit").value),
    countdown_s: Number($("#fl-countdown").value || 0), duration_s: Number($("#fl-minutes").value) * 60 };
  await act(ev.submitter, "flash_start", fields, () => toast(t("host.flash.started"), "ok"));
}

async function createCoupon(ev) {
  ev.preventDefault();
  const off = centsFromYuan($("#cp-off").value);
  const least = $("#cp-min").value.trim() ? centsFromYuan($("#cp-min").value) : 0;
  if (off == null || least == null) { toast(t("host.gb.price.bad")); return; }
  const fields = { title: $("#cp-title").value.trim(), off_cents: off, min_cents: least,
    quota: Number($("#cp-quota").value), per_user: Number($("#cp-per").value), task: $("#cp-task").value };
  if (fields.task === "watch") fields.watch_min = Number($("#cp-watch").value);
  await act(ev.submitter, "coupon_create", fields, () => {
    toast(t("host.coupon.created"), "ok");
    $("#coupon-form").reset();
    $("#cp-watch-row").hidden = true;
  });
}

export function wireHostFlash() {
  $("#flash-form").addEventListener("submit", startFlash);
  $("#coupon-form").addEventListener("submit", createCoupon);
  $("#cp-task").addEventListener("change", () => { $("#cp-watch-row").hidden = $("#cp-task").value !== "watch"; });
  channel.on("change", (changed) => {
    if (changed.has("flash") || changed.has("cards")) renderHostFlash();
    if (changed.has("coupons")) renderHostCoupons();
  });
  setInterval(() => { if (channel.model.flash) renderHostFlash(); }, 1000);
}
