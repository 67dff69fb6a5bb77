// The room channel in the browser: one websocket to /ws/{room} (subprotocol
// livecore.v1), every message one binary frame holding one msgpack map.
//
//   const ch = new RoomChannel({ room, token, ref });
//   ch.on("change", (parts) => render(parts));   // parts: Set of model parts
//   ch.connect();
//   await ch.request("comment", { text: "hi" }); // ack, or throws ChannelError(code)
//
// Position: the channel keeps (epoch, offset) of the last event applied. A
// batch whose first new event is not offset + 1 is a gap: the channel drops
// the socket and reconnects with since = {epoch, offset}, and the server
// replays the gap ("recovered") or sends a fresh snapshot. Every event is
// applied once, in offset order.
//
// Reconnecting (with backoff 0.5 s doubling to 15 s, jittered) happens on
// these close codes, and only these:
//   1001 node shutting down / silent connection   1006 connection lost
//   1011 store did not answer while joining        1012/1013 server restart / try later
//   4008 slow consumer (gap replayed)              4009 history reset (fresh snapshot)
//   4100 (ours) a gap in the offsets: at once, with since
// Every other code (1000, 1003, 1009, 4000 bad hello, 4001 token refused,
// 4002 hello timeout, 4004 no such room, 4005 token revoked, 4029 too many
// errors) is final:
// the channel emits "fatal" and stays closed.
//
// Events emitted (ch.on(name, fn) returns an unsubscribe function):
//   "status"  {status, attempt, delay, code, reason}  connecting|live|reconnecting|closed
//   "change"  Set of parts: meta, counts, comments, question, polls, cards,
//             sensors, groupbuys, groups, community, officer, leaderboard, you,
//             streams (who publishes video: for the player, which comes later)
//   "event"   each durable event applied live (not those inside a snapshot)
//   "snapshot" the snapshot message (the model was rebuilt from it)
//   "error"   {code, message} an error the server sent without a request id
//   "fatal"   {code, reason} the socket closed for good

import { decode, encode } from "/static/vendor/msgpack.js";
import { eventCommerce, snapshotCommerce, stateCommerce } from "/static/flashmodel.js";

export const SUBPROTOCOL = "livecore.v1";
export const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013, 4008, 4009, 4100]);
const GAP_CLOSE = 4100;
const RESYNC = 4009;
const MAX_COMMENTS = 200;
const MAX_SENSOR_POINTS = 60;
const REQUEST_TIMEOUT_MS = 10000;

/** A refused request: `code` is the stable error code of docs/protocol.md. */
export class ChannelError extends Error {
  constructor(code, message) {
    super(message || code);
    this.name = "ChannelError";
    this.code = code;
  }
}

export class Emitter {
  constructor() { this._handlers = new Map(); }
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this._handlers.get(name).delete(fn);
  }
  emit(name, data) {
    for (const fn of [...(this._handlers.get(name) || [])]) {
      try { fn(data); } catch (err) { setTimeout(() => { throw err; }); }
    }
  }
}

/** The room as the client knows it; rebuilt by each snapshot. */
export function emptyModel() {
  return {
    meta: null,          // {id, title, store, starts_at, host, status}
    you: null,           // {user, role, community}
    likes: 0,
    viewers: 0,
    comments: [],        // comment events {o, user, role, text, ts}, offset order
    question: null,      // {target, user, text, answered}
    polls: new Map(),    // poll id → {poll, question, options, status, closes_at, counts, v, total?}
    cards: {},           // kind → card
    sensors: {},         // kind → [[unix s, value], …]
    muted: {},           // user → until (unix s)
    groupbuys: new Map(),// gb → {gb, product, price_cents, target, deadline, tiers, max_qty,
                         //        scope, bonus_invites, bonus_cents, closed}
    groups: {},          // gb → {group → {v, n, q, s, b, target, missing, unit_cents, scope, deadline}}
    community: null,     // {id, name, lat, lng, radius_m, pickup}
    officer: null,       // {user, code, recruiter, earned_cents, referrals, rank, links}
    leaderboard: [],     // [[officer, cents], …]
    referredBy: null,
    streams: [],         // users publishing video now (snapshot `streams`, stream_started/ended)
    flash: null,         // the latest flash sale {fs, product, price_cents, stock, limit, starts_at,
                         //   ends_at, v, sold, left, s} (flashmodel.js)
    coupons: new Map(),  // cp → {cp, title, off_cents, min_cents, quota, per_user, task, v, claimed, left}
    flashMine: {},       // fs → units this viewer got (from acks)
    couponsMine: {},     // cp → copies this viewer claimed (from acks)
  };
}

export function wsUrl(room, loc = window.location) {
  const scheme = loc.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${loc.host}/ws/${encodeURIComponent(room)}`;
}

export class RoomChannel extends Emitter {
  /**
   * @param {object} o
   * @param {string} o.room   room id
   * @param {string} o.token  the JWS from the page's #token=
   * @param {string} [o.ref]  a share officer's code (sent with the first hello only)
   * @param {string} [o.url]  websocket URL (default ws(s)://this host/ws/{room})
   */
  constructor({ room, token, ref = null, url = null }) {
    super();
    this.room = room;
    this.token = token;
    this.ref = ref && /^[A-Za-z0-9_-]{1,16}$/.test(ref) ? ref : null;
    this.url = url || wsUrl(room);
    this.ws = null;
    this.status = "idle";
    this.epoch = null;
    this.offset = 0;
    this.model = emptyModel();
    this.attempt = 0;
    this.lastClose = null;
    this._nextId = 1;
    this._pending = new Map();   // id → {resolve, reject, timer}
    this._waitingLive = [];      // callbacks run when the channel is live
    this._timer = null;
    this._stopped = false;
    // Back online, or the page shown again (phones drop sockets in the background):
    // skip the rest of the backoff.
    this._onOnline = () => { if (this.status === "reconnecting" && !this.ws) this._reconnectNow(); };
    this._onVisible = () => { if (document.visibilityState === "visible") this._onOnline(); };
    if (typeof window !== "undefined") {
      window.addEventListener("online", this._onOnline);
      document.addEventListener("visibilitychange", this._onVisible);
    }
  }

  // -- connection -----------------------------------------------------------

  connect() {
    this._stopped = false;
    clearTimeout(this._timer);
    this._open();
  }

  /** Close for good (no reconnect). */
  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this._onOnline);
      document.removeEventListener("visibilitychange", this._onVisible);
    }
    if (this.ws) this.ws.close(1000, "bye");
    this._setStatus("closed");
  }

  _open() {
    if (this.ws) { // a socket still open (connect() called again): drop it quietly
      const old = this.ws;
      this.ws = null;
      old.onmessage = old.onclose = null;
      old.close(1000, "replaced");
    }
    this._setStatus(this.attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this._closed(1006, String(err));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const hello = { t: "hello", token: this.token };
      if (this.epoch !== null) hello.since = { epoch: this.epoch, offset: this.offset };
      if (this.ref) hello.ref = this.ref;
      ws.send(encode(hello));
    };
    ws.onmessage = (msg) => {
      if (ws !== this.ws) return;
      if (typeof msg.data === "string") return; // the protocol is binary only
      let message;
      try {
        message = decode(new Uint8Array(msg.data));
      } catch (err) {
        console.warn("livecore: undecodable frame", err);
        return;
      }
      this._dispatch(message);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this._closed(ev.code, ev.reason);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  _closed(code, reason) {
    this.lastClose = { code, reason };
    this._failPending(new ChannelError("disconnected", "connection lost"));
    if (this._stopped) return;
    if (!RECONNECT_CODES.has(code)) {
      this._setStatus("closed", { code, reason });
      this.emit("fatal", { code, reason });
      return;
    }
    if (code === RESYNC) this.epoch = null; // the history was reset: take a fresh snapshot
    const delay = code === GAP_CLOSE ? 0 : this._backoff();
    this.attempt += 1;
    this._setStatus("reconnecting", { code, reason, delay });
    this._timer = setTimeout(() => this._open(), delay);
  }

  _backoff() {
    const base = Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5));
    return Math.round(base * (0.5 + Math.random() * 0.5));
  }

  _reconnectNow() {
    clearTimeout(this._timer);
    this._open();
  }

  _setStatus(status, extra = {}) {
    this.status = status;
    this.emit("status", { status, attempt: this.attempt, ...extra });
  }

  _live() {
    this.attempt = 0;
    this.ref = null; // attribution is first-touch: one hello carrying it is enough
    this._setStatus("live");
    const waiting = this._waitingLive;
    this._waitingLive = [];
    for (const fn of waiting) fn();
  }

  // -- requests ---------------------------------------------------------------

  /**
   * Send a message with a request id; resolves with the ack, rejects with a
   * ChannelError (the server's code and message, or "timeout"/"disconnected").
   * While (re)connecting, the request waits for the channel to be live.
   */
  request(type, fields = {}, { timeout = REQUEST_TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const id = this._nextId++;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        this._waitingLive = this._waitingLive.filter((fn) => fn !== go);
        reject(new ChannelError("timeout", "no answer from the server"));
      }, timeout);
      const go = () => {
        this._pending.set(id, { resolve, reject, timer });
        this.ws.send(encode({ ...fields, t: type, id }));
      };
      if (this.status === "live" && this.ws && this.ws.readyState === WebSocket.OPEN) go();
      else if (this.status === "closed") {
        clearTimeout(timer);
        reject(new ChannelError("disconnected", "not connected"));
      } else this._waitingLive.push(go);
    });
  }

  /** Send without a request id (no ack); false when not connected. */
  send(type, fields = {}) {
    if (this.status !== "live" || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encode({ ...fields, t: type }));
    return true;
  }

  _failPending(err) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(err);
    }
    this._pending.clear();
  }

  // -- incoming ---------------------------------------------------------------

  _dispatch(m) {
    switch (m.t) {
      case "snapshot": this._snapshot(m); break;
      case "recovered": this._recovered(m); break;
      case "batch": this._batch(m); break;
      case "ack": {
        const p = this._pending.get(m.id);
        if (p) { this._pending.delete(m.id); clearTimeout(p.timer); p.resolve(m); }
        break;
      }
      case "error": {
        const p = m.id != null ? this._pending.get(m.id) : null;
        if (p) {
          this._pending.delete(m.id);
          clearTimeout(p.timer);
          p.reject(new ChannelError(m.code, m.message));
        } else this.emit("error", { code: m.code, message: m.message });
        break;
      }
      default: break; // unknown server messages are ignored (forward compatible)
    }
  }

  _snapshot(s) {
    const model = emptyModel();
    model.meta = s.room || null;
    model.you = s.you || null;
    model.likes = s.likes || 0;
    model.viewers = s.viewers || 0;
    for (const p of s.polls || []) model.polls.set(p.poll, { ...p });
    model.cards = { ...(s.cards || {}) };
    model.question = s.question || null;
    for (const g of s.groupbuys || []) model.groupbuys.set(g.gb, { ...g, closed: false });
    model.groups = s.groups || {};
    model.community = s.community || null;
    model.officer = s.officer || null;
    model.leaderboard = s.leaderboard || [];
    model.referredBy = s.referred_by || null;
    model.streams = (s.streams || []).map((x) => (typeof x === "string" ? x : x && x.user)).filter(Boolean);
    snapshotCommerce(model, s);
    this.model = model;
    this.epoch = s.epoch;
    this.offset = s.offset;
    const changed = new Set(["meta", "you", "counts", "comments", "question", "polls", "cards",
      "sensors", "groupbuys", "groups", "community", "officer", "leaderboard", "streams", "flash",
      "coupons"]);
    for (const c of s.comments || []) this._apply(c, changed, false);
    // Events after the state was read: applied on top, idempotently (offsets ≤ s.offset).
    for (const ev of s.events || []) this._apply(ev, changed, false);
    this.emit("snapshot", s);
    this.emit("change", changed);
    this._live();
  }

  _recovered(r) {
    this.epoch = r.epoch;
    const changed = new Set();
    for (const ev of r.events || []) {
      if (!this._inOrder(ev, changed)) return;
    }
    this.offset = Math.max(this.offset, r.offset);
    this.emit("change", changed);
    this._live();
  }

  _batch(b) {
    const changed = new Set();
    if (b.a != null) {
      for (const ev of b.ev || []) {
        if (!this._inOrder(ev, changed)) {
          if (changed.size) this.emit("change", changed);
          return;
        }
      }
    }
    if (b.st) this._state(b.st, changed);
    if (changed.size) this.emit("change", changed);
  }

  /** Apply the next event in offset order; false (and reconnect) on a gap. */
  _inOrder(ev, changed) {
    if (ev.o <= this.offset) return true; // seen already (snapshot tail, replay overlap)
    if (ev.o !== this.offset + 1) {
      console.warn(`livecore: gap in events (expected ${this.offset + 1}, got ${ev.o}); recovering`);
      if (this.ws) {
        this.ws.onmessage = null; // nothing more from this socket: its close reconnects with since
        this.ws.close(GAP_CLOSE, "gap");
      }
      return false;
    }
    this.offset = ev.o;
    this._apply(ev, changed);
    return true;
  }

  _state(st, changed) {
    const m = this.model;
    if (typeof st.likes === "number") { m.likes = st.likes; changed.add("counts"); }
    if (typeof st.viewers === "number") { m.viewers = st.viewers; changed.add("counts"); }
    if (st.tallies) {
      for (const [poll, t] of Object.entries(st.tallies)) {
        const known = m.polls.get(poll);
        if (known && (known.v == null || t.v > known.v)) {
          known.v = t.v;
          known.counts = t.counts;
          changed.add("polls");
        }
      }
    }
    if (st.groups) {
      for (const [gb, groups] of Object.entries(st.groups)) {
        for (const [group, state] of Object.entries(groups)) {
          if (this.noteGroup(gb, group, state)) changed.add("groups");
        }
      }
    }
    if (Array.isArray(st.leaderboard)) { m.leaderboard = st.leaderboard; changed.add("leaderboard"); }
    stateCommerce(m, st, changed);
  }

  /** Keep a group's state if newer (by version v); true when it changed. */
  noteGroup(gb, group, state) {
    const groups = this.model.groups[gb] || (this.model.groups[gb] = {});
    const known = groups[group];
    if (known && !(state.v > known.v)) return false;
    groups[group] = { ...known, ...state };
    return true;
  }

  /** Tell the page's listeners that parts of the model changed (after local edits). */
  changed(...parts) { this.emit("change", new Set(parts)); }

  /** Apply one durable event to the model (idempotent); `live` events are emitted. */
  _apply(ev, changed, live = true) {
    const m = this.model;
    switch (ev.t) {
      case "comment": {
        const list = m.comments;
        if (list.length && list[list.length - 1].o < ev.o) list.push(ev);
        else if (!list.some((c) => c.o === ev.o)) {
          list.push(ev);
          list.sort((a, b) => a.o - b.o);
        } else break;
        if (list.length > MAX_COMMENTS) list.splice(0, list.length - MAX_COMMENTS);
        changed.add("comments");
        break;
      }
      case "comment_deleted": {
        const i = m.comments.findIndex((c) => c.o === ev.target);
        if (i >= 0) { m.comments.splice(i, 1); changed.add("comments"); }
        break;
      }
      case "user_muted": m.muted[ev.user] = ev.until; changed.add("comments"); break;
      case "question_pinned":
      case "question_answered":
        m.question = { target: ev.target, user: ev.user, text: ev.text, answered: !!ev.answered };
        changed.add("question");
        break;
      case "poll_opened":
        if (!m.polls.has(ev.poll)) {
          m.polls.set(ev.poll, {
            poll: ev.poll, question: ev.question, options: ev.options, status: "open",
            closes_at: ev.closes_at, counts: ev.options.map(() => 0), v: 0,
          });
          changed.add("polls");
        }
        break;
      case "poll_closed": {
        const p = m.polls.get(ev.poll);
        if (p) {
          p.status = "closed";
          p.counts = ev.counts;
          p.total = ev.total;
          changed.add("polls");
        }
        break;
      }
      case "card":
        if (ev.card && ev.card.kind) { m.cards[ev.card.kind] = ev.card; changed.add("cards"); }
        break;
      case "sensor":
        for (const r of ev.readings || []) {
          const series = m.sensors[r.kind] || (m.sensors[r.kind] = []);
          series.push([r.at, r.value]);
          if (series.length > MAX_SENSOR_POINTS) series.shift();
        }
        changed.add("sensors");
        break;
      case "groupbuy_opened": {
        const { o, t, ...spec } = ev;
        if (!m.groupbuys.has(ev.gb)) {
          m.groupbuys.set(ev.gb, { ...spec, closed: false });
          changed.add("groupbuys");
        }
        break;
      }
      case "groupbuy_formed":
      case "groupbuy_failed": {
        const mine = m.groups[ev.gb] && m.groups[ev.gb][ev.group];
        const isHost = m.you && m.you.role === "host";
        if (!mine && !isHost) break; // another community's group
        const spec = m.groupbuys.get(ev.gb) || {};
        const state = { ...(mine || { v: 0, target: spec.target, scope: spec.scope, b: false }) };
        state.s = ev.t === "groupbuy_formed" ? "formed" : "failed";
        state.n = ev.members;
        if (ev.qty != null) state.q = ev.qty;
        if (ev.unit_cents != null) state.unit_cents = ev.unit_cents;
        (m.groups[ev.gb] || (m.groups[ev.gb] = {}))[ev.group] = state;
        changed.add("groups");
        break;
      }
      case "groupbuy_closed": {
        const g = m.groupbuys.get(ev.gb);
        if (g && !g.closed) { g.closed = true; changed.add("groupbuys"); }
        break;
      }
      case "stream_started":
        if (!m.streams.includes(ev.user)) { m.streams.push(ev.user); changed.add("streams"); }
        // The host's stream makes the room live (the server set it before saying so).
        if (m.meta && ev.user === m.meta.host && m.meta.status === "scheduled") {
          m.meta = { ...m.meta, status: "live" };
          changed.add("meta");
        }
        break;
      case "stream_ended":
        if (m.streams.includes(ev.user)) {
          m.streams = m.streams.filter((u) => u !== ev.user);
          changed.add("streams");
        }
        break;
      case "room_ended":
        if (m.meta) { m.meta = { ...m.meta, status: "ended" }; changed.add("meta"); }
        break;
      default: eventCommerce(m, ev, changed); break;
    }
    if (live) this.emit("event", ev);
  }
}
