// The host console's quick chips: the controls a host needs while live, one tap
// away. On a phone (narrower than the two-column layout) a chip opens its card as
// a bottom sheet over the stage, its first field focused; the backdrop, Escape or
// the card's own header (a <details> summary) closes it. On a wide screen the card
// opens in place and comes into view.
import { $, $$ } from "/static/room.js";

const PHONE = window.matchMedia("(max-width: 899px)");
let current = null;

function close() {
  if (!current) return;
  current.classList.remove("as-sheet");
  current = null;
  $("#host-sheet-backdrop").hidden = true;
}

function open(card) {
  close();
  if (card.tagName === "DETAILS") card.open = true;
  if (PHONE.matches) {
    current = card;
    card.classList.add("as-sheet");
    $("#host-sheet-backdrop").hidden = false;
    card.scrollTop = 0;
  } else {
    card.scrollIntoView({ behavior: "smooth", block: "start" });
  }
  const field = card.querySelector("input, select, textarea");
  if (field) field.focus({ preventScroll: true });
}

export function wireQuickSheets() {
  for (const chip of $$("#quick [data-open]")) {
    const card = document.getElementById(chip.dataset.open);
    chip.addEventListener("click", () => open(card));
    // A details card closed from its own header leaves the sheet.
    if (card.tagName === "DETAILS") card.addEventListener("toggle", () => { if (!card.open && card === current) close(); });
  }
  $("#host-sheet-backdrop").addEventListener("click", close);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
  PHONE.addEventListener("change", close);
}
