// The pickup counter's page (/p/{room}#token=…): type (or paste) a buyer's code,
// redeem it once. The pickup token comes in the link's fragment and is kept by
// boot.js out of the address bar; it is sent in the Authorization header only.
import { linkToken, roomId } from "/static/boot.js";
import { labelPage, t, errorSentence } from "/static/i18n.js";

const room = roomId();
const $ = (id) => document.getElementById(id);
const token = linkToken();
let last = null;

function show() {
  const out = $("result");
  if (!last) { out.textContent = ""; return; }
  out.className = last.ok ? "good" : "bad";
  out.textContent = last.ok ? t("pickup.ok", { user: last.body.user, qty: last.body.qty }) : errorSentence(last.body);
}

async function redeem(event) {
  event.preventDefault();
  const code = $("code").value;
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/pickup/redeem`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ code }),
  });
  last = { ok: res.ok, body: await res.json() };
  if (res.ok) $("code").value = "";
  show();
  document.body.dataset.ready = res.ok ? "redeemed" : "refused";
}

labelPage(show);
if (!token) {
  $("notoken").hidden = false;
  $("form").hidden = true;
} else {
  $("form").addEventListener("submit", (e) => redeem(e).catch(() => { last = { ok: false, body: {} }; show(); }));
}
document.body.dataset.ready = "1";
