// Every page's bootstrap: what its address says (the token, the room, the share
// code) and the language it opens in. It imports nothing, so the light pages (the
// clip share page, the package page inlined in one document) use it too without
// loading the string table; pages with the table start with labelPage() of i18n.js.
//
//   import { linkToken, withToken, roomId, queryParam, shareCode } from "/static/boot.js";
//
// The token: a link carries it in the fragment (#token=…), which browsers never
// send to the server. linkToken() is the one place a page reads it and withToken()
// the one place a page hands it on to another page, so taking the token out of the
// address bar is an edit here and nowhere else.

const LANG_KEY = "livecore:lang";

/** The token the page's link carries (#token=…), or null (a guest, or no access). */
export function linkToken() {
  return new URLSearchParams(location.hash.slice(1)).get("token");
}

/** A link to another page of ours that carries this page's token along (if it has one). */
export function withToken(path) {
  const token = linkToken();
  return token ? `${path}#token=${encodeURIComponent(token)}` : path;
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
