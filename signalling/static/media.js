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
    let detail = `HTTP ${res.status}`;
    try { const body = await res.json(); detail = `${body.code}: ${body.message}`; } catch (_) { /* not JSON */ }
    const err = new Error(detail);
    err.status = res.status;
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
    async stop() {
      if (stopped) return;
      stopped = true;
      pc.close();
      if (location) {
        try { await fetch(location, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }); } catch (_) { /* gone */ }
      }
    },
  };
}

export async function publish(room, token, stream) {
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
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
  const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: "max-bundle" });
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

export async function camera() {
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 }, facingMode: "user" },
    audio: true,
  });
}
