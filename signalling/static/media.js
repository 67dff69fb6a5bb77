// WHIP (publish) and WHEP (play) for the pages, as RFC 9725 describes: one
// complete SDP offer (after ICE gathering) POSTed with the room token, the
// answer applied, DELETE on the returned Location to stop. No trickle ICE:
// the server answers PATCH with 405.
//
//   const pub = await publish(room, token, stream);   // host / accepted KOC
//   const play = await watch(room, token, "host1");   // anyone in the room
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

async function exchange(url, token, pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) {
    let body = {};
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    const err = new Error(body.message || `HTTP ${res.status}`);
    err.status = res.status;
    err.code = body.code || "publish_refused";
    throw err;
  }
  const location = res.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return location;
}

function session(pc, location, token, stream) {
  let stopped = false;
  return {
    pc, stream, location,
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

async function iceServers(room, token) {
  const key = `${room} ${token}`;
  if (iceCache.key === key && Date.now() < iceCache.until) return iceCache.servers;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/ice-servers`, {
      headers: { Authorization: `Bearer ${token}` }, cache: "no-store",
    });
    if (!res.ok) return [];
    const body = await res.json();
    iceCache = { key, servers: body.iceServers || [], until: Date.now() + (body.ttl || 600) * 500 };
    return iceCache.servers;
  } catch (_) {
    return []; // the node is unreachable: the POST that follows says so
  }
}

async function peerConnection(room, token) {
  return new RTCPeerConnection({ iceServers: await iceServers(room, token), bundlePolicy: "max-bundle" });
}

export async function publish(room, token, stream) {
  const pc = await peerConnection(room, token);
  for (const track of stream.getTracks()) {
    const t = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    if (track.kind === "video") preferH264(t);
  }
  try {
    const location = await exchange(`/whip/${encodeURIComponent(room)}`, token, pc);
    return session(pc, location, token, stream);
  } catch (err) {
    pc.close();
    throw err;
  }
}

export async function watch(room, token, publisher) {
  const pc = await peerConnection(room, token);
  const stream = new MediaStream();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addEventListener("track", (e) => stream.addTrack(e.track));
  const query = publisher ? `?publisher=${encodeURIComponent(publisher)}` : "";
  try {
    const location = await exchange(`/whep/${encodeURIComponent(room)}${query}`, token, pc);
    return session(pc, location, token, stream);
  } catch (err) {
    pc.close();
    throw err;
  }
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

/**
 * Play the room's HLS (for crowds beyond WebRTC capacity, or when WHEP fails)
 * in `video` with hls.js (or natively on Safari). Returns {stop()}.
 */
export async function watchHls(video, room) {
  const url = `/hls/${encodeURIComponent(room)}/index.m3u8`;
  const { default: Hls } = await import("/static/vendor/hls.js");
  if (Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, manifestLoadingMaxRetry: 2 });
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
