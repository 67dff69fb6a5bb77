// The viewer's lucky-draw card (福袋): the prize, the entry task, a countdown and one
// button to enter; then the result, told to the winner on their own page. It follows
// the room's draw_opened / draw_drawn events, and asks GET /api/rooms/{room}/draws on
// every snapshot for a draw opened before the page joined.
//
//   mountLuckyBag({ channel, room, me, box })
import { t, errorSentence, onLang } from "/static/i18n.js";
import { clock, h, fill, toast } from "/static/room.js";

export function mountLuckyBag({ channel, room, me, box }) {
  let draw = null; // the public state of the room's latest draw
  let entered = false;
  let watchFrom = 0; // when this page first asked to enter a watch draw (ms)
  let dismissed = "";
  let busy = false;

  const nowS = () => Date.now() / 1000;

  function taskText() {
    if (draw.task === "comment") return t("draw.task.comment", { phrase: draw.phrase });
    if (draw.task === "watch") return t("draw.task.watch", { n: draw.minutes });
    if (draw.task === "groupbuy") return t("draw.task.groupbuy");
    return t("draw.task.none");
  }

  function render() {
    if (!draw || dismissed === draw.draw) { box.hidden = true; return; }
    box.hidden = false;
    box.dataset.draw = draw.draw;
    box.dataset.status = draw.status;
    const head = [h("button", { type: "button", class: "ghost close", onclick: () => { dismissed = draw.draw; render(); } }, "×"),
      h("div", { class: "prize" }, `${t("draw.title")} · ${draw.prize}`)];
    if (draw.status === "drawn") {
      const won = (draw.won || []).includes(me());
      box.dataset.result = won ? "won" : entered ? "lost" : "none";
      fill(box, ...head,
        h("p", { class: won ? "won" : "task" }, won ? t("draw.won") : entered ? t("draw.lost") : t("draw.done")),
        h("p", { class: "task" }, t("draw.count", { n: draw.entrants, k: (draw.won || []).length })),
        h("a", { href: `/api/rooms/${encodeURIComponent(room)}/draws/${encodeURIComponent(draw.draw)}`, target: "_blank", rel: "noopener" }, t("draw.verify")));
      return;
    }
    box.dataset.entered = entered ? "yes" : "no"; // acknowledged by the node, not just tapped
    const left = draw.closes_at - nowS();
    const closed = draw.status !== "open" || left <= 0;
    let label = entered ? t("draw.entered") : closed ? t("draw.closed") : t("draw.enter");
    let wait = 0;
    if (!entered && !closed && draw.task === "watch" && watchFrom) {
      wait = Math.ceil(watchFrom / 1000 + draw.minutes * 60 - nowS());
      if (wait > 0) label = t("draw.watching", { left: clock(wait) });
    }
    fill(box, ...head,
      h("p", { class: "task" }, taskText()),
      h("p", { class: "left" }, closed ? t("draw.waiting") : t("draw.left", { left: clock(left) })),
      h("button", { type: "button", id: "draw-enter", disabled: entered || closed || wait > 0 || busy, onclick: enter }, label));
  }

  async function enter() {
    if (!draw || busy) return;
    busy = true;
    render();
    try {
      await channel.request("draw_enter", { draw: draw.draw });
      entered = true;
      toast(t("draw.entered"), "ok");
    } catch (err) {
      if (err.code === "draw_task" && draw.task === "watch") {
        if (!watchFrom) watchFrom = Date.now();
      } else {
        toast(errorSentence(err));
      }
    } finally {
      busy = false;
      render();
    }
  }

  function opened(next) {
    if (!draw || draw.draw !== next.draw) { entered = false; watchFrom = 0; }
    draw = next;
    render();
    // A watch task counts from the first ask: ask as soon as the card shows.
    if (draw.status === "open" && draw.task === "watch" && !watchFrom && !entered) {
      watchFrom = Date.now();
      channel.request("draw_enter", { draw: draw.draw }).then(() => { entered = true; render(); }).catch(() => {});
    }
  }

  async function load() {
    try {
      // A (re)joined page asks past its own cache: a draw may have been drawn in the gap.
      const res = await fetch(`/api/rooms/${encodeURIComponent(room)}/draws`, { cache: "no-cache" });
      if (!res.ok) return;
      const latest = (await res.json()).draws[0];
      if (latest && (!draw || latest.draw !== draw.draw || latest.status !== draw.status)) opened(latest);
    } catch { /* offline: the events bring it */ }
  }

  channel.on("snapshot", load);
  channel.on("event", (ev) => {
    if (ev.t === "draw_opened") opened({ ...ev, status: "open", entrants: 0 });
    if (ev.t === "draw_drawn" && draw && ev.draw === draw.draw) {
      draw = { ...draw, status: "drawn", won: ev.won, seed: ev.seed, entrants: ev.entrants };
      dismissed = "";
      if ((ev.won || []).includes(me())) toast(t("draw.won"), "ok");
      render();
    }
  });
  onLang(render);
  setInterval(() => { if (draw && draw.status !== "drawn" && !box.hidden) render(); }, 1000);
}
