// The host console's live state and its end. The room's state of record says
// whether the live is on; this page's stream is only one part of it:
// - live, and this page (or another of the host's) publishes: 直播中, 下播;
// - live, but no stream of the host: the page was reloaded, the phone changed or
//   its network dropped. The live goes on through the end grace; the page says so
//   and 开播 reads 继续直播 (publishing anew continues the same live and replay);
// - ended: 下播 was confirmed, or the grace ran out. An ended room stays ended
//   (the server refuses WHIP with 409 room_ended): no 开播, but a note that the
//   live has ended and, once it is built, a link to its replay.
// 下播 asks first, then ends the room at once (POST /api/rooms/{room}/end) and
// stops the camera: viewers see the end and the replay without waiting a grace.
import { t } from "/static/i18n.js";
import { $, errorText, fetchRoom, showBadge, toast } from "/static/room.js";
import { channel, room, token } from "/static/hostctx.js";

/** "live" | "away" | "ended" | "scheduled" for this host page. */
export function liveState(stage) {
  const m = channel.model;
  if ((stage && stage.publishing) || (m.meta && m.streams.includes(m.meta.host))) return "live";
  const status = m.meta && m.meta.status;
  if (status === "live") return "away";
  if (status === "ended") return "ended";
  return "scheduled";
}

export function renderLiveControls(stage) {
  const state = liveState(stage);
  showBadge(state === "away" ? "live" : state);
  document.body.dataset.live = state;
  $("#away-note").hidden = state !== "away" || !!(stage && stage.publishing);
  const button = $("#golive");
  const ended = state === "ended";
  button.hidden = ended;
  $("#ended-note").hidden = !ended;
  if (ended) lookForReplay();
  if (stage && !stage.publishing) {
    button.dataset.i18n = state === "away" ? "host.resume" : "host.golive";
    button.textContent = t(button.dataset.i18n);
  }
}

/** How often an ended room's console asks whether its replay is built. */
const REPLAY_ASK_MS = 4000;
let replayTimer = null;

/** The replay link (the room's public `replay`), asked again until it is there. */
async function lookForReplay() {
  if (replayTimer || !$("#ended-replay").hidden) return;
  replayTimer = setTimeout(() => { replayTimer = null; lookForReplay(); }, REPLAY_ASK_MS);
  try {
    const meta = await fetchRoom(room);
    if (meta && typeof meta.replay === "string" && meta.replay) {
      clearTimeout(replayTimer);
      replayTimer = null;
      $("#ended-replay").href = meta.replay;
      $("#ended-replay").hidden = false;
      $("#ended-making").hidden = true;
    }
  } catch { /* asked again */ }
}

function ask() {
  const dialog = $("#end-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "end"), { once: true });
  });
}

/** 下播: confirm, end the room now, then stop publishing. An ended room's sessions
 *  are closed by the server on every node, so there is nothing left to DELETE; if the
 *  end did not go through, the WHIP session is DELETEd as usual. */
export async function endLive(stage) {
  if (!(await ask())) return;
  let ended = false;
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/end`, {
      method: "POST", headers: { Authorization: `Bearer ${token}` },
    });
    ended = res.ok;
    if (!res.ok) toast(errorText(await res.json().catch(() => ({}))));
  } catch (err) {
    toast(errorText(err));
  }
  await stage.stop({ remote: ended });
}
