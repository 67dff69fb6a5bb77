// The host console's 讲解 button: a tap explains the pinned product (the segment from
// the tap to the next 讲解 or 结束讲解 becomes that product's clip, on its card in the
// room); a second tap ends it. Pinning another product ends it on the server too.
import { t } from "/static/i18n.js";
import { errorText, toast, $ } from "/static/room.js";

let explaining = null; // the product being explained, or null

function show(button) {
  button.setAttribute("aria-pressed", String(explaining !== null));
  button.dataset.i18n = explaining !== null ? "host.explain.end" : "host.explain";
  button.textContent = t(button.dataset.i18n);
}

export function wireExplain(channel) {
  const button = $("#explain");
  show(button);
  button.addEventListener("click", async () => {
    const product = channel.model.cards.product;
    if (explaining === null && !(product && product.name)) {
      toast(t("host.explain.none"));
      return;
    }
    button.disabled = true;
    try {
      if (explaining === null) {
        await channel.request("explain", { product: product.name });
        explaining = product.name;
        toast(t("host.explain.started", { name: product.name }), "ok");
      } else {
        explaining = null;
        await channel.request("explain", {});
        toast(t("host.explain.ended"), "ok");
      }
    } catch (err) {
      toast(errorText(err)); // not_recording before going live, not_pinned
    } finally {
      button.disabled = false;
      show(button);
    }
  });
  channel.on("event", (ev) => { // another product pinned: that explanation is over
    if (ev.t === "card" && ev.card && ev.card.kind === "product" && explaining !== null
      && ev.card.name !== explaining) {
      explaining = null;
      show(button);
    }
  });
}
