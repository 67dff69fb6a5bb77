// The clip share page /c/{room}~{clip}?ref=CODE: plays the clip, shows the product and
// the group's progress, and leads into the live room (or its replay), carrying the
// share officer's code. Public REST only; no token.
import { pathSegment, shareCode } from "/static/boot.js";

const $ = (id) => document.getElementById(id);
const clipId = pathSegment(-1);
const ref = shareCode();

function roomUrl(room) {
  const q = ref ? `?ref=${encodeURIComponent(ref)}` : "";
  return `/r/${encodeURIComponent(room)}${q}`;
}

async function getJson(url) {
  const answer = await fetch(url, { headers: { Accept: "application/json" } });
  if (!answer.ok) return null;
  return answer.json();
}

function yuan(cents) {
  return (cents / 100).toFixed(cents % 100 ? 2 : 0);
}

function showGroup(buys, product) {
  const open = buys.filter((b) => b.status === "open");
  const buy = open.find((b) => product && b.product === product) || open[0];
  if (!buy) return;
  const best = buy.groups[0];
  const members = best ? best.members : 0;
  const joined = buy.groups.reduce((n, g) => n + g.members, 0);
  $("group-product").textContent = `${buy.product} · 团购价 ¥${yuan(buy.price_cents)}`;
  $("group-bar").style.width = `${Math.min(100, Math.round((100 * members) / buy.target))}%`;
  const left = Math.max(0, buy.target - members);
  $("group-text").textContent = left > 0
    ? `已有 ${joined} 位邻居参团，最快的小区还差 ${left} 人成团`
    : `已有 ${joined} 位邻居参团，已经成团啦`;
  $("group").hidden = false;
}

function showRoom(room) {
  if (!room) return;
  $("room-title").textContent = room.title;
  $("store").textContent = room.store;
  document.title = `${room.title} · 精彩片段`;
  const enter = $("enter");
  enter.href = roomUrl(room.id);
  const badge = $("room-status");
  if (room.status === "live") {
    badge.textContent = "直播中";
    badge.dataset.status = "live";
    badge.hidden = false;
    enter.textContent = "进入直播间 一起拼团";
  } else if (room.replay) {
    badge.textContent = "已结束";
    badge.hidden = false;
    enter.textContent = "直播已结束 · 看回放";
    const replay = $("replay");
    replay.href = room.replay;
    replay.hidden = false;
  } else {
    enter.textContent = "进入直播间";
  }
  enter.hidden = false;
}

async function main() {
  const found = await getJson(`/api/clips/${encodeURIComponent(clipId)}`).catch(() => null);
  if (!found) {
    $("missing").hidden = false;
    document.querySelector(".share-video").hidden = true;
    return;
  }
  const { clip, room } = found;
  const video = $("clip");
  video.poster = clip.thumbnail;
  video.src = clip.video;
  video.dataset.clip = clip.id;
  $("clip-title").textContent = clip.title;
  if (clip.product) {
    $("clip-product").textContent = `商品：${clip.product}`;
    $("clip-product").hidden = false;
  }
  $("about").hidden = false;
  showRoom(room);
  const buys = await getJson(`/api/rooms/${encodeURIComponent(clip.room)}/groupbuys`).catch(() => null);
  if (buys) showGroup(buys.groupbuys, clip.product);
}

main();
