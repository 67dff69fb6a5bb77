// The clip library of a room for share officers: /clips/{room}?ref=CODE.
// Each clip: thumbnail, title, play (the share page) and "copy share link"
// (the share page with the officer's code). Public REST only.
import { roomId, shareCode } from "/static/boot.js";

const $ = (id) => document.getElementById(id);
const room = roomId();
const ref = shareCode();

function shareUrl(clip) {
  const q = ref ? `?ref=${encodeURIComponent(ref)}` : "";
  return `${location.origin}${clip.share}${q}`;
}

function seconds(s) {
  return `${Math.round(s)} 秒`;
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "已复制";
  } catch {
    window.prompt("长按复制链接", text);
  }
}

function item(clip) {
  const li = document.createElement("li");
  li.className = "clip-item";
  const img = document.createElement("img");
  img.src = clip.thumbnail;
  img.alt = "";
  img.loading = "lazy";
  const body = document.createElement("div");
  body.className = "clip-body";
  const title = document.createElement("b");
  title.textContent = clip.title;
  const meta = document.createElement("span");
  meta.className = "muted";
  meta.textContent = seconds(clip.duration);
  const actions = document.createElement("div");
  actions.className = "clip-actions";
  const play = document.createElement("a");
  play.className = "clip-play";
  play.href = shareUrl(clip);
  play.textContent = "播放";
  const share = document.createElement("button");
  share.type = "button";
  share.textContent = "复制分享链接";
  share.dataset.link = shareUrl(clip);
  share.addEventListener("click", () => copy(share.dataset.link, share));
  actions.append(play, share);
  body.append(title, meta, actions);
  li.append(img, body);
  return li;
}

async function main() {
  const [roomAnswer, clipsAnswer] = await Promise.all([
    fetch(`/api/rooms/${encodeURIComponent(room)}`),
    fetch(`/api/rooms/${encodeURIComponent(room)}/clips`),
  ]);
  if (roomAnswer.ok) {
    const info = await roomAnswer.json();
    $("room-title").textContent = `${info.title} · 精彩片段`;
  }
  const clips = clipsAnswer.ok ? (await clipsAnswer.json()).clips : [];
  $("empty").hidden = clips.length > 0;
  $("list").replaceChildren(...clips.map(item));
}

main();
