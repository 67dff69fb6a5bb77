// The buyer's pickup code (自提码) on the viewer page: once their group has formed, the
// dock offers 提货码; it opens a sheet with the code in large digits, its QR code (for
// a counter that scans) and the compound's pickup point. The code comes from
// POST /api/rooms/{room}/pickup/code with the viewer's own token (never in a URL).
import QRCode from "/static/vendor/qrcode.js";
import { t, errorSentence, onLang } from "/static/i18n.js";
import { h, toast } from "/static/room.js";
import { openSheet } from "/static/sheets.js";
import { room, session, ui } from "/static/viewstate.js";

let shownFor = null;

export async function openPickupCode(gb) {
  shownFor = gb;
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/pickup/code`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${session.token}` },
    body: JSON.stringify({ gb }),
  });
  const body = await res.json();
  if (!res.ok) { toast(errorSentence(body)); return; }
  const canvas = h("canvas", { class: "pickup-qr", "aria-hidden": "true" });
  await QRCode.toCanvas(canvas, body.code, { width: 180, margin: 1, errorCorrectionLevel: "M" });
  openSheet("pickup", t("pickup.mine"), [
    h("p", { class: "pickup-digits", id: "pickup-digits" }, body.shown),
    canvas,
    h("p", {}, t("pickup.qty", { qty: body.qty })),
    body.pickup ? h("p", {}, t("pickup.point", { point: body.pickup })) : null,
    h("p", { class: body.redeemed ? "note-ok" : "muted", id: "pickup-state" },
      body.redeemed ? t("pickup.used") : t("pickup.show")),
  ]);
}

onLang(() => { if (ui.sheet === "pickup" && shownFor) openPickupCode(shownFor); });
