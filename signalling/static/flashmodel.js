// Flash sales and coupons in the room model (channel.js calls these): the
// snapshot's `flash` and `coupons`, their coalesced states (st.flash, st.coupons,
// newest version wins) and their events (flash_started, flash_sold_out,
// flash_ended, coupon_created).

/** The snapshot's flash sale and coupons into a fresh model. */
export function snapshotCommerce(model, s) {
  model.flash = s.flash ? { ...s.flash } : null;
  model.coupons = new Map((s.coupons || []).map((c) => [c.cp, { ...c }]));
  model.flashMine = { ...(s.my_flash || {}) };
  model.couponsMine = { ...(s.my_coupons || {}) };
}

/** A batch's `st.flash` / `st.coupons`: kept when newer; adds "flash"/"coupons" to changed. */
export function stateCommerce(model, st, changed) {
  if (st.flash && noteFlash(model, st.flash)) changed.add("flash");
  for (const [cp, state] of Object.entries(st.coupons || {})) {
    const known = model.coupons.get(cp);
    if (known && !(state.v <= known.v)) {
      model.coupons.set(cp, { ...known, ...state });
      changed.add("coupons");
    }
  }
}

/** Keep a flash-sale state if newer (v grows across a room's sales). */
export function noteFlash(model, state) {
  const known = model.flash;
  if (known && state.v <= known.v) return false;
  model.flash = known && known.fs === state.fs ? { ...known, ...state } : { ...state };
  return true;
}

/** One durable event; true when it was a flash-sale or coupon event. */
export function eventCommerce(model, ev, changed) {
  switch (ev.t) {
    case "flash_started":
      if (noteFlash(model, { ...ev, sold: 0, left: ev.stock, s: "open" })) changed.add("flash");
      return true;
    case "flash_sold_out":
      if (noteFlash(model, { fs: ev.fs, v: ev.v, sold: ev.sold, left: 0, s: "sold_out" })) changed.add("flash");
      return true;
    case "flash_ended":
      if (noteFlash(model, { fs: ev.fs, v: ev.v, sold: ev.sold, left: Math.max(0, ev.stock - ev.sold), s: "ended" })) {
        changed.add("flash");
      }
      return true;
    case "coupon_created":
      if (!model.coupons.has(ev.cp)) {
        model.coupons.set(ev.cp, { ...ev, v: 1, claimed: 0, left: ev.quota });
        changed.add("coupons");
      }
      return true;
    default:
      return false;
  }
}
