// Every page's bootstrap: what its address says (the token, the room, the share
// code) and the language it opens in. It imports nothing, so the light pages (the
// clip share page, the package page inlined in one document) use it too without
// loading the string table; pages with the table start with labelPage() of i18n.js.
//
//   import { linkToken, withToken, roomId, queryParam, shareCode } from "/static/boot.js";
//
// The token: a link carries it in the fragment (#token=…), which browsers never
// send to the server. This module is the one place a page reads it: once, when
// a page loads it, the token is taken out of the fragment into this tab's sessionStorage and
// removed from the address bar (history.replaceState), so a phone's share sheet,
// a screenshot or a bookmark never carries it. withToken() is the one place a page
// links to another page of ours: the link carries no token; the next page of the
// same tab finds it in sessionStorage (a token for another room is not used there).

const LANG_KEY = "livecore:lang";
const TOKEN_KEY = "livecore:token";
let held = "";

/** The room claim of a token (unverified: only to pick the right one), or "". */
function roomOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return String(JSON.parse(atob(part)).room || "");
  } catch { return ""; }
}

/** Take #token=… out of the address bar (other fragment parameters stay). */
function takeFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (!token) return null;
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* private mode: memory only */ }
  return token;
}

// Out of the address bar as soon as any page loads this module, used or not.
held = takeFromAddress() || "";

/** The token this page acts with: the link's (#token=…, read once), else the one this
 * tab kept from an earlier page, if it is for this page's room (or any room); or null
 * (a guest, or no access). */
export function linkToken() {
  if (held) return held;
  let kept = null;
  try { kept = sessionStorage.getItem(TOKEN_KEY); } catch { /* private mode */ }
  if (!kept) return null;
  const room = roomOf(kept);
  return room === "*" || room === pathSegment(-1) ? kept : null;
}

/** A link to another page of ours. It never carries the token: the page it opens in
 * this tab reads the token this page kept (linkToken). */
export function withToken(path) {
  linkToken();
  return path;
}

/** A part of the path, decoded: the last by default (the room of /r/{room}, the clip of /c/{clip}). */
export function pathSegment(at = -1) {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[at < 0 ? parts.length + at : at] || "");
}

/** The room a room page is about: /r/{room}, /host/{room}, /o/{room}, /d/{room}, /clips/{room}. */
export const roomId = () => pathSegment(-1);

/** A query parameter of the page's URL (e.g. ?ref=CODE), or null. */
export function queryParam(name) {
  return new URLSearchParams(location.search).get(name);
}

/** The share officer's code the link came with (?ref=CODE), or "" when absent or malformed. */
export function shareCode() {
  const ref = queryParam("ref") || "";
  return /^[A-Za-z0-9_-]{1,32}$/.test(ref) ? ref : "";
}

/** The language to open in: ?lang=zh|en, else the one last chosen on this device, else Chinese. */
export function chosenLang() {
  const asked = queryParam("lang");
  if (asked === "en" || asked === "zh") return asked;
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === "en" || saved === "zh") return saved;
  } catch { /* private mode */ }
  return "zh";
}

/** Remember the language chosen with the switch: every page opens in it next time. */
export function keepLang(lang) {
  try { localStorage.setItem(LANG_KEY, lang); } catch { /* private mode: this visit only */ }
}
