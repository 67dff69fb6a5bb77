// What the viewer page's modules share: the room, who we are, the channel and
// stage (live bindings, set once by viewer.js), the page's own UI state, and
// the group buys this device joined (localStorage).
import { queryParam, roomId } from "/static/boot.js";

export const room = roomId();
export const inviter = queryParam("inviter");
export let session = null;
export let channel = null;
export let stage = null;

/** Set the shared parts as viewer.js creates them. */
export function bind(parts) {
  if ("session" in parts) session = parts.session;
  if ("channel" in parts) channel = parts.channel;
  if ("stage" in parts) stage = parts.stage;
}

export const ui = {
  likesShown: 0, likesPending: 0, likeTimer: null,
  votes: {}, qty: {}, nearby: null, pollHidden: null,
  wall: [], sheet: null, everLive: false, replay: null, replayTried: 0, hls: false,
  hostAway: null, // why the host's stream left, when it was not ended (lost, replaced, origin_lost)
  replaying: false, replayTimer: 0, // the replay plays (the ended overlay steps aside)
};

export const me = () => (channel && channel.model.you ? channel.model.you.user : null);
const storeKey = () => `livecore:orders:${room}:${me()}`;

/** Group buys this device joined here: {gb: quantity}. */
export function myOrders() {
  try { return JSON.parse(localStorage.getItem(storeKey()) || "{}"); } catch { return {}; }
}
export function saveOrder(gb, qty) {
  const orders = myOrders();
  if (qty) orders[gb] = qty; else delete orders[gb];
  try { localStorage.setItem(storeKey(), JSON.stringify(orders)); } catch { /* private mode */ }
}

/** The snapshot's `mine` covers the connection's community only: merged, never replacing. */
export function mergeOrders(mine) {
  try { localStorage.setItem(storeKey(), JSON.stringify({ ...myOrders(), ...mine })); } catch { /* private mode */ }
}
