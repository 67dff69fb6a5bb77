// WHIP (publish) and WHEP (play) for the pages, as RFC 9725 describes: one
// complete SDP offer (after ICE gathering) POSTed with the room token, the
// answer applied, DELETE on the returned Location to stop. No trickle: the
// offer carries every candidate. A publisher or viewer whose network changed
// restarts ICE in place (RFC 9725 §4.3.2, §4.4: PATCH with the new credentials
// and If-Match, the server's new ones come back in a 200 sdpfrag); if that is
// refused, it posts a new offer.
//
//   const pub = await publish(room, token, stream);   // host / accepted KOC
//   await restartIce(pub);                            // network changed (throws: re-publish)
//   const play = await watch(room, token, "host1");   // anyone in the room
//   await restartIce(play);                           // the same for a player (throws: re-watch)
//   video.srcObject = play.stream;  ...  await play.stop();

const GATHER_MS = 2000;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, GATHER_MS); // use what was gathered so far
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// After restartIce() the gathering state still says "complete" (the old
// generation's) until the new gathering starts: wait for its end-of-candidates
// event instead (at most GATHER_MS, then use what was gathered).
function endOfCandidates(pc) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); pc.removeEventListener("icecandidate", check); resolve(); };
    const check = (e) => { if (!e.candidate) done(); };
    const timer = setTimeout(done, GATHER_MS);
    pc.addEventListener("icecandidate", check);
  });
}

// H.264 constrained baseline with packetization-mode=1 first (the server keeps
// it end to end and clips need no transcoding), then VP8, then the rest.
function preferH264(transceiver) {
  if (!window.RTCRtpSender || !RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpSender.getCapabilities("video");
  if (!caps) return;
  const rank = (c) => {
    const mime = c.mimeType.toLowerCase();
    const fmtp = c.sdpFmtpLine || "";
    if (mime === "video/h264" && fmtp.includes("packetization-mode=1") && fmtp.includes("42e0")) return 0;
    if (mime === "video/h264" && fmtp.includes("packetization-mode=1")) return 1;
    if (mime === "video/vp8") return 2;
    if (mime === "video/rtx") return 3;
    return 9;
  };
  const codecs = caps.codecs.filter((c) => rank(c) < 9).sort((a, b) => rank(a) - rank(b));
  if (codecs.length) transceiver.setCodecPreferences(codecs);
}

/** Seconds a refusal's `Retry-After` asks for (429, 503), or null. */
export function retryAfterSeconds(header) {
  const n = Number(header);
  return header != null && header !== "" && Number.isFinite(n) && n >= 0 ? n : null;
}

/** An Error for a refused request: `status`, `code` (for the string table), `retryAfter` (s). */
async function refusal(res, fallback) {
  let body = {};
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  const err = new Error(body.message || `HTTP ${res.status}`);
  err.status = res.status;
  err.code = body.code || fallback;
  err.retryAfter = retryAfterSeconds(res.headers.get("Retry-After"));
  return err;
}

/**
 * Throws (no `status`: the server was not asked) when the offer names no candidate:
 * the device has no network now, and a session offered so could never connect
 * (the browser does not gather again by itself).
 */
function requireCandidates(sdp) {
  if (!/\na=candidate:/.test(sdp)) {
    throw Object.assign(new Error("no network: the offer has no ICE candidate"), { code: "disconnected" });
  }
}

async function exchange(url, token, pc, signal) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  requireCandidates(pc.localDescription.sdp);
  const res = await fetch(url, {
    method: "POST",
    signal,
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw await refusal(res, "publish_refused");
  const location = new URL(res.headers.get("Location"), new URL(url, window.location.href)).href;
  const etag = res.headers.get("ETag");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return { location, etag };
}

function session(pc, { location, etag }, token, stream) {
  let stopped = false;
  return {
    pc, stream, location, etag, token,
    // DELETE first (RFC 9725 §4.2): the server ends the session while it still
    // exists; closing the peer connection first lets it time out and answer 404.
    // `{ remote: true }`: the server already ended it (costream_ended): nothing to DELETE.
    async stop({ remote = false } = {}) {
      if (stopped) return;
      stopped = true;
      if (location && !remote) {
        try {
          await fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` }, keepalive: true });
        } catch (_) { /* the server is gone: nothing to end there */ }
      }
      pc.close();
    },
  };
}

// The STUN/TURN servers the node hands this caller (TURN credentials minted for
// the token's user, short-lived): fetched before the offer, since the offer
// carries every candidate (no trickle). Kept for half their lifetime, counted on
// this device's clock (a phone's clock may be hours off the node's).
// None configured, or the request fails: no servers (never a public default).
let iceCache = { key: "", servers: [], until: 0 };

async function iceServers(room, token, signal) {
  const key = `${room} ${token}`;
  if (iceCache.key === key && Date.now() < iceCache.until) return iceCache.servers;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/ice-servers`, {
      headers: { Authorization: `Bearer ${token}` }, cache: "no-store", signal,
    });
    if (!res.ok) return [];
    const body = await res.json();
    iceCache = { key, servers: body.iceServers || [], until: Date.now() + (body.ttl || 600) * 500 };
    return iceCache.servers;
  } catch (_) {
    return []; // the node is unreachable: the POST that follows says so
  }
}

async function peerConnection(room, token, signal) {
  return new RTCPeerConnection({ iceServers: await iceServers(room, token, signal), bundlePolicy: "max-bundle" });
}

// Simulcast (RFC 8853): three encodings of the camera, each viewer is sent the
// one its own link carries. Top first: the server records the first layer. The
// browser leaves out what the camera's size or its bandwidth estimate cannot feed.
export const LAYERS = [
  { rid: "h", maxBitrate: 1500000 },
  { rid: "m", maxBitrate: 500000, scaleResolutionDownBy: 2 },
  { rid: "l", maxBitrate: 150000, scaleResolutionDownBy: 4 },
];

// `signal` (an AbortSignal) cancels the requests: a recovering page bounds each
// attempt, since a request sent into a dead network can hang for many seconds.
// `simulcast: false` publishes one encoding (as before simulcast).
export async function publish(room, token, stream, { signal, simulcast = true } = {}) {
  const pc = await peerConnection(room, token, signal);
  for (const track of stream.getTracks()) {
    const init = { direction: "sendonly", streams: [stream] };
    if (track.kind === "video" && simulcast) init.sendEncodings = LAYERS.map((l) => ({ ...l }));
    const t = pc.addTransceiver(track, init);
    if (track.kind === "video") preferH264(t);
  }
  try {
    const made = await exchange(`/whip/${encodeURIComponent(room)}`, token, pc, signal);
    return session(pc, made, token, stream);
  } catch (err) {
    pc.close();
    throw err;
  }
}

export async function watch(room, token, publisher, { signal } = {}) {
  const pc = await peerConnection(room, token, signal);
  const stream = new MediaStream();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addEventListener("track", (e) => stream.addTrack(e.track));
  const query = publisher ? `?publisher=${encodeURIComponent(publisher)}` : "";
  try {
    const made = await exchange(`/whep/${encodeURIComponent(room)}${query}`, token, pc, signal);
    return session(pc, made, token, stream);
  } catch (err) {
    pc.close();
    throw err;
  }
}

// -- ICE restart of a WHIP or WHEP session (RFC 9725 §4.3.2, RFC 8840 fragments) --

/**
 * The trickle-ice-sdpfrag of an offer made after restartIce(): its first (bundle)
 * m= line and mid, the new ice-ufrag/ice-pwd, its candidates, end-of-candidates.
 */
export function offerFragment(sdp) {
  const lines = sdp.split(/\r?\n/);
  const first = lines.findIndex((l) => l.startsWith("m="));
  if (first < 0) throw new Error("offer without m= section");
  let end = lines.findIndex((l, i) => i > first && l.startsWith("m="));
  if (end < 0) end = lines.length;
  const section = lines.slice(first, end);
  const pick = (prefix) => section.find((l) => l.startsWith(prefix)) || lines.find((l) => l.startsWith(prefix));
  const out = [lines[first], pick("a=mid:"), pick("a=ice-ufrag:"), pick("a=ice-pwd:")];
  if (out.some((l) => !l)) throw new Error("offer without mid or ICE credentials");
  out.push(...section.filter((l) => l.startsWith("a=candidate:")), "a=end-of-candidates");
  return `${out.join("\r\n")}\r\n`;
}

/**
 * `answerSdp` (the session's remote description) with the ICE credentials and
 * candidates of a restart's answer fragment: each m= section gets the new
 * ice-ufrag/ice-pwd and the fragment's candidates instead of its old ones.
 */
export function applyAnswerFragment(answerSdp, frag) {
  const fl = frag.split(/\r?\n/);
  const ufrag = fl.find((l) => l.startsWith("a=ice-ufrag:"));
  const pwd = fl.find((l) => l.startsWith("a=ice-pwd:"));
  if (!ufrag || !pwd) throw new Error("answer fragment without ICE credentials");
  const candidates = fl.filter((l) => l.startsWith("a=candidate:"));
  const out = [];
  let inMedia = false;
  for (const line of answerSdp.split(/\r?\n/)) {
    if (line === "") continue;
    if (line.startsWith("m=")) inMedia = true;
    if (line.startsWith("a=candidate:") || line === "a=end-of-candidates") continue;
    if (line.startsWith("a=ice-ufrag:")) { out.push(ufrag); continue; }
    if (line.startsWith("a=ice-pwd:")) {
      out.push(pwd);
      if (inMedia) out.push(...candidates, "a=end-of-candidates");
      continue;
    }
    out.push(line);
  }
  return `${out.join("\r\n")}\r\n`;
}

/**
 * Restart the ICE of a publishing or playing session in place (its network changed): a new
 * offer with new credentials and candidates, PATCHed with If-Match; the server's
 * 200 fragment becomes the remote description's ICE. Resolves once the answer is
 * applied (the caller waits for `connected`). Throws with `status` when the server
 * refuses (404 gone, 412 stale tag, 422 refused: publish or play anew) or on a network error
 * (no `status`: the server was not reached; try again).
 */
export async function restartIce(session, { signal } = {}) {
  const { pc } = session;
  pc.restartIce();
  const ended = endOfCandidates(pc); // listening before gathering starts again
  await pc.setLocalDescription(await pc.createOffer());
  await ended;
  requireCandidates(pc.localDescription.sdp);
  const res = await fetch(session.location, {
    method: "PATCH",
    signal,
    headers: {
      "Content-Type": "application/trickle-ice-sdpfrag",
      Authorization: `Bearer ${session.token}`,
      "If-Match": session.etag || "*",
    },
    body: offerFragment(pc.localDescription.sdp),
  });
  if (res.status !== 200) throw await refusal(res, "session_not_found");
  const frag = await res.text();
  const etag = res.headers.get("ETag");
  await pc.setRemoteDescription({ type: "answer", sdp: applyAnswerFragment(pc.remoteDescription.sdp, frag) });
  if (etag) session.etag = etag;
}

// Frames decoded so far on a receiving connection (for tests and the stats line).
export async function framesDecoded(pc) {
  let frames = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
  });
  return frames;
}

/** Why the camera did not open, as an error code the string table knows. */
export function cameraErrorCode(err) {
  if (!window.isSecureContext || !navigator.mediaDevices) return "insecure";
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "camera_denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "camera_missing";
  if (name === "NotReadableError" || name === "AbortError") return "camera_busy";
  return err && err.code ? err.code : "camera_missing";
}

export async function camera(facingMode = "user") {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw Object.assign(new Error("insecure context"), { code: "insecure" });
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 }, facingMode },
      audio: true,
    });
  } catch (err) {
    throw Object.assign(new Error(err.message), { code: cameraErrorCode(err) });
  }
}

/** Swap the published video for the other camera (front ↔ back) without renegotiating. */
export async function switchCamera(session, facingMode) {
  const fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode, width: { ideal: 1280 }, height: { ideal: 720 } } });
  const track = fresh.getVideoTracks()[0];
  const sender = session.pc.getSenders().find((s) => s.track && s.track.kind === "video");
  if (sender) await sender.replaceTrack(track);
  for (const old of session.stream.getVideoTracks()) { session.stream.removeTrack(old); old.stop(); }
  session.stream.addTrack(track);
  return track;
}

/** Mute or unmute the microphone of a publishing session; returns the new muted state. */
export function setMuted(session, muted) {
  for (const track of session.stream.getAudioTracks()) track.enabled = !muted;
  return muted;
}

/** The quality note of an HLS level by its picture height: "hd", "sd" or "smooth". */
export function qualityOf(height) {
  if (height >= 720) return "hd";
  if (height >= 360) return "sd";
  return "smooth";
}

/** After a stall, auto ABR stays capped to the lowest rendition until
 *  playback has gone this long without another; a cap that stalls again soon after
 *  its lift doubles the wait (up to CAP_QUIET_MAX_MS). */
const CAP_QUIET_MS = 8000;
const CAP_QUIET_MAX_MS = 64000;

/**
 * hls.js's bandwidth estimate trails a link that gets worse under LL-HLS (small
 * parts behind blocking requests give it little to measure), so it keeps fetching
 * a rendition the link cannot carry and stalls. On a stall above the lowest
 * rendition, do what dash.js's InsufficientBufferRule does: cap auto ABR to the
 * lowest rendition and switch at the next part (one stall, not one per step);
 * lift the cap after a quiet period so ABR climbs back by its own estimate.
 * Auto ABR stays on (a level is never pinned).
 */
function stepDownOnStall(Hls, hls) {
  let timer = 0;
  let quiet = CAP_QUIET_MS;
  let liftedAt = 0;
  const lift = () => { hls.autoLevelCapping = -1; liftedAt = performance.now(); };
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (data.details !== Hls.ErrorDetails.BUFFER_STALLED_ERROR || !hls.autoLevelEnabled) return;
    const soonAfterLift = liftedAt && performance.now() - liftedAt < quiet;
    quiet = soonAfterLift ? Math.min(2 * quiet, CAP_QUIET_MAX_MS) : CAP_QUIET_MS;
    if (Math.min(hls.loadLevel, hls.currentLevel) > 0) {
      hls.autoLevelCapping = 0;
      hls.nextLoadLevel = 0;
    }
    clearTimeout(timer);
    timer = setTimeout(lift, quiet);
  });
  hls.on(Hls.Events.DESTROYING, () => clearTimeout(timer));
}

/**
 * Play the room's HLS (for crowds beyond WebRTC capacity, or when WHEP fails)
 * in `video` with hls.js (or natively on Safari): the multivariant playlist
 * (one rendition per recorded layer, hls.js picks by bandwidth, each rendition
 * rated by what its parts really weigh, and a stall steps down: stepDownOnStall)
 * in low-latency mode. `onQuality(quality)` is told the level playing
 * ("hd" | "sd" | "smooth"). Returns {hls?, stop()}.
 */
export async function watchHls(video, room, { onQuality = () => {} } = {}) {
  const url = `/hls/${encodeURIComponent(room)}/master.m3u8`;
  const { default: Hls } = await import("/static/vendor/hls.js");
  if (Hls.isSupported()) {
    // abrMaxWithRealBitrate: the master's BANDWIDTH is what the recorder measured
    // early, while the publisher's encoder was still ramping up.
    const hls = new Hls({ lowLatencyMode: true, manifestLoadingMaxRetry: 2, abrMaxWithRealBitrate: true });
    stepDownOnStall(Hls, hls);
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
      const level = hls.levels[data.level];
      if (level && level.height) onQuality(qualityOf(level.height));
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    video.play().catch(() => {});
    return { hls, stop() { hls.destroy(); } };
  }
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    video.play().catch(() => {});
    return { stop() { video.removeAttribute("src"); video.load(); } };
  }
  throw Object.assign(new Error("no HLS support"), { code: "stream_not_found" });
}
