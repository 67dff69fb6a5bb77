// A printable sheet of package labels for one batch: each carries the QR code
// of the batch's page (/t/{batch}), the product, the batch id and the
// fingerprint of the key its records are signed with.
import QRCode from "/static/vendor/qrcode.js";
import { pathSegment } from "/static/boot.js";
import { labelPage, t } from "/static/i18n.js";

const batch = pathSegment(1); // /t/{batch}/label
const sheet = document.getElementById("sheet");

async function draw(info, count) {
  const labels = [];
  for (let i = 0; i < count; i++) {
    const box = document.createElement("div");
    box.className = "label";
    const canvas = document.createElement("canvas");
    await QRCode.toCanvas(canvas, info.url, { width: 256, margin: 1, errorCorrectionLevel: "M" });
    const text = document.createElement("div");
    const product = document.createElement("b");
    product.textContent = info.batch.product;
    const lines = [`扫码溯源 · Scan to trace`, `批次 ${info.batch.id}`, info.batch.brand,
      `签名指纹 ${info.key.kid}`];
    text.append(product, ...lines.map((line) => {
      const s = document.createElement("small");
      s.textContent = line;
      return s;
    }));
    box.append(canvas, text);
    labels.push(box);
  }
  sheet.replaceChildren(...labels);
  document.body.dataset.ready = "1";
}

async function main() {
  const answer = await fetch(`/api/batches/${encodeURIComponent(batch)}`);
  if (!answer.ok) {
    document.getElementById("title").textContent = t("err.batch_not_found");
    document.body.dataset.ready = "missing";
    return;
  }
  const info = await answer.json();
  document.getElementById("title").textContent = `${info.batch.product} · ${info.batch.id}`;
  const count = document.getElementById("count");
  count.addEventListener("change", () => draw(info, Math.max(1, Math.min(60, Number(count.value) || 1))));
  document.getElementById("print").addEventListener("click", () => window.print());
  await draw(info, Number(count.value));
}

labelPage();
main();
