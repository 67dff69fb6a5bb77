// The viewer page's dock, always within thumb reach: the pinned product (image,
// price, tier price), the compound's group buy ("本小区已有25位邻居参团，还差5人成团",
// bar, countdown) and the 参团 button with its quantity.
import { t } from "/static/i18n.js";
import { clock, errorText, fill, h, now, tickDeadlines, toast, yuan, $ } from "/static/room.js";
import { askNickOnce, locate, openAllGroupbuys, openCommunity, openInvite, openTrace } from "/static/sheets.js";
import { channel, inviter, me, myOrders, saveOrder, ui } from "/static/viewstate.js";
import { openPickupCode } from "/static/pickupcode.js";

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

export function gbState(spec) {
  const group = myGroup(spec);
  const state = group && channel.model.groups[spec.gb] ? channel.model.groups[spec.gb][group] : null;
  const n = state ? state.n : 0;
  const target = (state && state.target) || spec.target;
  const missing = state && state.missing != null ? state.missing : Math.max(0, target - n);
  const unit = state && state.unit_cents != null ? state.unit_cents : tierPrice(spec, n);
  let status = state ? state.s : "open";
  if (spec.closed && status === "open") status = "closed";
  return { group, state, n, target, missing, unit, status };
}

export function featured() {
  const specs = [...channel.model.groupbuys.values()];
  const open = specs.filter((s) => !s.closed);
  return open.length ? open[open.length - 1] : specs[specs.length - 1] || null;
}

function productThumb(name, url) {
  const letter = h("span", { class: "thumb-letter" }, (name || "团").slice(0, 1));
  if (!url) return h("div", { class: "thumb" }, letter);
  return h("div", { class: "thumb" },
    h("img", { src: url, alt: name, loading: "lazy", referrerpolicy: "no-referrer",
      onerror: (e) => { e.target.replaceWith(letter); } }));
}

export function countLine(spec, g) {
  const roomWide = spec.scope === "room";
  if (g.status === "formed") return t(roomWide ? "gb.formed.room" : "gb.formed", { n: g.n });
  if (g.status === "failed") return t("gb.failed", { n: g.n, target: g.target });
  if (g.status === "closed") return t("gb.closed");
  return t(roomWide ? "gb.count.room" : "gb.count", { n: g.n, missing: g.missing });
}

/** Which compound the group is for, and its pickup point (自提点): a tap opens the sheet. */
function communityLine(community) {
  return h("button", { type: "button", class: "ghost small community-line", onclick: openCommunity },
    community.pickup ? t("gb.where.pickup", { name: community.name, pickup: community.pickup })
      : t("gb.where", { name: community.name }));
}

export function renderDock() {
  const dock = $("#dock");
  const product = channel.model.cards.product;
  const spec = featured();
  const trace = channel.model.cards.trace || Object.keys(channel.model.sensors).length;
  if (!spec && !product) {
    const ended = channel.model.meta && channel.model.meta.status === "ended";
    fill(dock, h("p", { class: "dock-empty" }, t(ended ? "gb.none.ended" : "gb.none"),
      trace ? [" ", h("button", { type: "button", class: "chip trace-open", onclick: openTrace }, t("trace.button"))] : null));
    dock.dataset.gb = "";
    return;
  }
  const name = spec ? spec.product : product.name;
  const image = product && product.image_url ? product.image_url : null;
  const parts = [];
  if (!spec) {
    parts.push(h("div", { class: "dock-row" }, productThumb(name, image),
      h("div", { class: "dock-main" },
        h("p", { class: "dock-name" }, name),
        h("p", { class: "dock-price" }, h("span", { class: "price" }, yuan(product.price_cents)),
          product.stock === 0 ? h("span", { class: "state failed" }, t("product.soldout"))
            : product.stock != null ? h("span", { class: "muted" }, t("product.stock", { n: product.stock })) : null)),
      trace ? h("button", { type: "button", class: "chip trace-open", onclick: openTrace },
        t("trace.button")) : null));
    fill(dock, parts);
    dock.dataset.gb = "";
    return;
  }
  const g = gbState(spec);
  const joinedQty = myOrders()[spec.gb] || 0;
  const maxQty = spec.max_qty || 5;
  const qty = Math.min(maxQty, ui.qty[spec.gb] || joinedQty || 1);
  ui.qty[spec.gb] = qty;
  const pct = Math.min(100, Math.round((g.n / g.target) * 100));
  const nextTier = (spec.tiers || []).find(([members]) => g.n < members);
  const canJoin = (g.status === "open" || g.status === "formed") && !spec.closed;

  let action;
  if (!g.group) {
    action = h("button", { type: "button", class: "join locate", id: "locate", onclick: () => locate() }, t("gb.locate"));
  } else if (joinedQty && g.status === "open") {
    action = h("div", { class: "dock-act" }, stepper(spec, qty, maxQty),
      qty !== joinedQty
        ? h("button", { type: "button", class: "join", onclick: () => join(spec, qty) }, t("gb.update", { qty }))
        : h("button", { type: "button", class: "join invite", onclick: () => openInvite(spec) }, t("gb.invite")));
  } else if (joinedQty && g.status === "formed") {
    action = h("div", { class: "dock-act" }, h("span", { class: "note-ok" }, t("gb.confirmed", { qty: joinedQty })),
      h("button", { type: "button", class: "chip pickup-open", onclick: () => openPickupCode(spec.gb) }, t("pickup.mine")));
  } else if (canJoin) {
    action = h("div", { class: "dock-act" }, stepper(spec, qty, maxQty),
      h("button", { type: "button", class: "join", onclick: () => join(spec, qty) },
        `${t("gb.join")} ${yuan(g.unit * qty)}`));
  } else action = null;

  const more = channel.model.groupbuys.size > 1
    ? h("button", { type: "button", class: "chip", onclick: openAllGroupbuys }, t("gb.more", { n: channel.model.groupbuys.size }))
    : null;
  fill(dock,
    h("div", { class: "dock-row" }, productThumb(name, image),
      h("div", { class: "dock-main" },
        h("p", { class: "dock-name" }, name),
        h("p", { class: "dock-price" },
          h("span", { class: "price" }, yuan(g.unit)),
          g.unit < spec.price_cents ? h("span", { class: "was" }, yuan(spec.price_cents)) : null,
          h("span", { class: "muted" }, t("gb.each")),
          nextTier ? h("span", { class: "tier-tag" }, t("gb.tier", { n: nextTier[0], cents: yuan(nextTier[1]) })) : null)),
      h("div", { class: "dock-side" },
        trace ? h("button", { type: "button", class: "chip trace-open", onclick: openTrace }, t("trace.button")) : null,
        more)),
    g.group ? h("p", { class: "gb-count" }, countLine(spec, g)) : h("p", { class: "gb-count muted" }, t("gb.locate.hint")),
    g.group && channel.model.community && spec.scope !== "room" ? communityLine(channel.model.community) : null,
    h("div", { class: "progress-row" },
      h("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(g.target),
        "aria-valuenow": String(g.n) }, h("span", { style: `width:${pct}%` })),
      g.status === "open" && !spec.closed
        ? h("span", { class: "countdown" }, `${t("gb.left")} `, h("span", { dataset: { deadline: spec.deadline } }, clock(spec.deadline - now())))
        : h("span", { class: `state ${g.status}` }, t(`gb.s.${g.status}`))),
    spec.bonus_invites
      ? h("p", { class: g.state && g.state.b ? "bonus on" : "bonus" },
        g.state && g.state.b ? t("gb.bonus.on", { cents: yuan(spec.bonus_cents) })
          : t("gb.bonus", { n: spec.bonus_invites, cents: yuan(spec.bonus_cents) }))
      : null,
    h("div", { class: "dock-foot" },
      joinedQty && g.status === "open" ? h("span", { class: "note-ok" }, t("gb.joined", { qty: joinedQty })) : null,
      joinedQty && g.status === "open" ? h("button", { type: "button", class: "ghost small leave", onclick: () => leave(spec) }, t("gb.leave")) : null,
      action));
  dock.dataset.gb = spec.gb;
  dock.dataset.status = g.status;
  tickDeadlines();
}

function stepper(spec, qty, maxQty) {
  return h("span", { class: "stepper", role: "group" },
    h("button", { type: "button", "aria-label": t("gb.qty.less"), class: "less", disabled: qty <= 1,
      onclick: () => { ui.qty[spec.gb] = Math.max(1, qty - 1); renderDock(); } }, "−"),
    h("output", { class: "qty", "aria-live": "polite" }, String(qty)),
    h("button", { type: "button", "aria-label": t("gb.qty.more"), class: "more", disabled: qty >= maxQty,
      onclick: () => { ui.qty[spec.gb] = Math.min(maxQty, qty + 1); renderDock(); } }, "+"));
}

function groupFromAck(ack) {
  const { t: _t, id, gb, group, ...state } = ack;
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
    toast(t("gb.joined.toast", { qty }), "ok");
    askNickOnce();
  } catch (err) {
    if (err.code === "no_community") renderDock();
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
    toast(t("gb.left.toast"), "ok");
  } catch (err) {
    toast(err.code === "group_formed" ? t("gb.formed.cannot_leave") : errorText(err));
  }
}

