// Who this page is: the token in the link (#token=…), or a guest session.
//
// A shared link (/r/{room}, ?ref=, ?inviter=) carries no token: the page asks
// POST /api/rooms/{room}/guest for a short-lived viewer token. The guest id and
// its key stay in localStorage, so a reload, a reconnect or a renewal is the
// same user on this device (their joins and their officer's credit stay put).
//
//   const s = await openSession(room);      // {token, user, guest, name}
//   keepSession(room, s, channel);         // a guest's token renewed before and at expiry
//   nameOf(user) / learnNames(room, users, onNames)  // nicknames for comments

import { linkToken } from "/static/boot.js";
import { t } from "/static/i18n.js";
import { banner } from "/static/room.js";

const KEY = "livecore:guest";
const RENEW_EARLY_S = 15 * 60;
const NAMES_MAX = 2000;

function saved() {
  try { return JSON.parse(localStorage.getItem(KEY) || "null") || {}; } catch { return {}; }
}

function save(entry) {
  try { localStorage.setItem(KEY, JSON.stringify(entry)); } catch { /* private mode: this visit only */ }
}

async function mint(room, fields = {}) {
  const known = saved();
  const body = { ...fields };
  if (known.guest && known.key) { body.guest = known.guest; body.key = known.key; }
  const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/guest`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(answer.message || res.statusText), answer, { status: res.status });
  save({ guest: answer.user, key: answer.key, name: answer.name || known.name || null });
  if (answer.name) names.set(answer.user, answer.name);
  return { token: answer.token, user: answer.user, guest: true, name: answer.name || null,
    expiresAt: answer.expires_at };
}

/** The page's identity: the link's token, or a guest token (retried while rate-limited). */
export async function openSession(room) {
  const token = linkToken();
  if (token) return { token, user: null, guest: false, name: null };
  for (let attempt = 0; ; attempt++) {
    try {
      return await mint(room);
    } catch (err) {
      if (!(err.code === "rate_limited" || err.code === "store_unavailable" || err.status === undefined)
          || attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
    }
  }
}

/** Keep a page's channel on a valid guest token: renewed before it expires, and at
 * once when the node refuses an expired one (close 4001), then reconnected. A link's
 * own token is left alone. */
export function keepSession(room, session, channel) {
  keepFresh(room, session, channel);
  channel.on("fatal", async ({ code }) => {
    if (code === 4001 && session.guest) {
      try { channel.token = await renewNow(room, session); banner(""); channel.connect(); } catch { /* banner stays */ }
    }
  });
}

/** Renew a guest token before it expires (the channel reconnects with the new one). */
function keepFresh(room, session, channel) {
  if (!session.guest) return;
  const wait = Math.max(60, session.expiresAt - Date.now() / 1000 - RENEW_EARLY_S) * 1000;
  setTimeout(async () => {
    try {
      const next = await mint(room);
      Object.assign(session, next);
      channel.token = next.token;
    } catch { /* the next reconnect renews */ }
    keepFresh(room, session, channel);
  }, wait);
}

/** A fresh guest token (after the channel refused an expired one). */
async function renewNow(room, session) {
  const next = await mint(room);
  Object.assign(session, next);
  return next.token;
}

/** Set this guest's nickname (shown next to their comments). */
export async function setNickname(room, session, name) {
  const next = await mint(room, { name });
  Object.assign(session, next);
  return next.name;
}

export const savedName = () => saved().name || "";

// -- nicknames ------------------------------------------------------------------

const names = new Map();   // user → nickname
const asked = new Set();   // users looked up already
let pending = new Set();
let timer = null;

export const isGuest = (user) => /^g-[a-z2-7]{12}$/.test(user || "");

/** What to show for a user: their nickname, "邻居 xxxx" for a guest without one, else the id. */
export function nameOf(user) {
  if (names.has(user)) return names.get(user);
  if (isGuest(user)) return t("neighbour", { tail: user.slice(-4) });
  return user;
}

/** Look up the nicknames of guests not seen yet (batched); `done` runs when some arrived. */
export function learnNames(room, users, done) {
  for (const u of users) if (isGuest(u) && !asked.has(u) && asked.size < NAMES_MAX) pending.add(u);
  if (!pending.size || timer) return;
  timer = setTimeout(async () => {
    timer = null;
    const batch = [...pending].slice(0, 50);
    pending = new Set([...pending].slice(50));
    for (const u of batch) asked.add(u);
    try {
      const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/names?u=${batch.map(encodeURIComponent).join(",")}`);
      if (res.ok) {
        const body = await res.json();
        let any = false;
        for (const [u, n] of Object.entries(body.names || {})) { names.set(u, n); any = true; }
        if (any && done) done();
      }
    } catch { /* fallback names stay */ }
    if (pending.size) learnNames(room, [], done);
  }, 150);
}

/** Remember a name we already know (our own). */
export function knowName(user, name) { if (user && name) names.set(user, name); }
