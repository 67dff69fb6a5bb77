// The package page (/t/{batch}). Everything it needs arrives inline with the
// HTML (one round trip on a slow phone network); the chain is verified here,
// in the browser, before the page says "verified".
import uPlot from "/static/vendor/uplot.js";
import { chosenLang, keepLang, queryParam } from "/static/boot.js";
import { verifyChain } from "/static/trace-verify.js";

const T = {
  zh: {
    checking: "正在核验…", verified: "已核验：记录未被篡改", failed: "核验未通过：记录可能被改动",
    unsupported: "此浏览器无法核验", batch: "批次", origin: "产地", stage: "当前环节",
    coldchain: "温控记录", report: "检测报告", journey: "生命旅程", places: "途经地点",
    scan: "扫码在手机上查看", labels: "打印包装标签", buyIn: "在直播间购买",
    missing: "没有找到这个批次，请核对包装上的二维码。",
    detail: (n) => `${n} 条记录环环相扣，服务器签名有效`, key: "签名密钥指纹",
    registered: "登记", planted: "种植", fertilised: "施肥", harvested: "采收", processed: "加工",
    tested: "检测", shipped: "发货", delivered: "送达",
    field: "地块", crop: "作物", variety: "品种", fertiliser: "肥料", amount_kg: "用量(千克)",
    organic: "有机", quantity_kg: "数量(千克)", workshop_temp_c: "车间温度(°C)",
    workshop_humidity_pct: "车间湿度(%)", steps: "工序", lab: "检测机构", result: "结论",
    items: "检测项目", carrier: "承运方", vehicle: "车辆", devices: "记录仪", receiver: "签收",
    note: "备注", pass: "合格", fail: "不合格", yes: "是", no: "否",
    band: (lo, hi, u) => `标准范围 ${lo}–${hi} ${u}`, within: "全程在标准范围内",
    excursion: (a, b, peak, u) => `超出范围：${a} 至 ${b}，最高 ${peak} ${u}`,
    open: "查看报告文件", hash: "SHA-256", checkFile: "核对文件哈希", fileOk: "文件哈希一致",
    fileBad: "文件哈希不一致", changed: "此条记录与签名不符", mean: "平均", max: "最高", min: "最低",
    limit: "上限", lower: "下限",
  },
  en: {
    checking: "Checking…", verified: "Verified: records unchanged", failed: "Not verified: records may have been changed",
    unsupported: "This browser cannot verify", batch: "Batch", origin: "Origin", stage: "Stage",
    coldchain: "Temperature record", report: "Test report", journey: "Journey", places: "Places",
    scan: "Scan to open on a phone", labels: "Print package labels", buyIn: "Buy in the live room",
    missing: "No such batch. Please check the QR code on the package.",
    detail: (n) => `${n} records linked, server signature valid`, key: "Signing key fingerprint",
    registered: "Registered", planted: "Planted", fertilised: "Fertilised", harvested: "Harvested",
    processed: "Processed", tested: "Tested", shipped: "Shipped", delivered: "Delivered",
    field: "Field", crop: "Crop", variety: "Variety", fertiliser: "Fertiliser", amount_kg: "Amount (kg)",
    organic: "Organic", quantity_kg: "Quantity (kg)", workshop_temp_c: "Workshop temperature (°C)",
    workshop_humidity_pct: "Workshop humidity (%)", steps: "Steps", lab: "Laboratory", result: "Result",
    items: "Items tested", carrier: "Carrier", vehicle: "Vehicle", devices: "Loggers", receiver: "Received by",
    note: "Note", pass: "Pass", fail: "Fail", yes: "yes", no: "no",
    band: (lo, hi, u) => `Allowed ${lo}–${hi} ${u}`, within: "Within range the whole way",
    excursion: (a, b, peak, u) => `Out of range: ${a} to ${b}, peak ${peak} ${u}`,
    open: "Open the report file", hash: "SHA-256", checkFile: "Check the file's hash", fileOk: "File hash matches",
    fileBad: "File hash does not match", changed: "This record does not match the signature",
    mean: "mean", max: "max", min: "min", limit: "upper limit", lower: "lower limit",
  },
};

const data = JSON.parse(document.getElementById("trace-data").textContent);
const embedded = queryParam("embed") === "1";
let lang = chosenLang();
let verdict = { state: "checking" };
const $ = (id) => document.getElementById(id);
const t = (k) => T[lang][k] ?? k;
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const when = (s) => new Date(s * 1000).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB",
  { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
const seriesName = (s) => (lang === "zh" ? s.zh : s.en);

function renderStatic() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  const b = data.batch;
  document.title = `${b.product} · ${t("journey")}`;
  $("product").textContent = b.product;
  $("brand").textContent = b.brand;
  $("batch-id").textContent = b.id;
  $("origin").textContent = b.origin;
  $("stage").textContent = t(b.stage);
  $("label-link").href = `/t/${encodeURIComponent(b.id)}/label`;
  $("key").textContent = `${t("key")} ${data.key.kid}`;
  const rooms = $("rooms");
  rooms.replaceChildren(...data.rooms.map((room) => {
    const title = (data.room_titles && data.room_titles[room]) || room;
    const a = el("a", "", `${t("buyIn")} · ${title}`);
    a.href = `/r/${encodeURIComponent(room)}`;
    return a;
  }));
}

/** The time axis in the page's language (uPlot's own ticks are English: "12pm"). */
function timeTicks(u, splits) {
  const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
  const options = span > 2 * 86400 ? { month: "numeric", day: "numeric" }
    : { hour: "2-digit", minute: "2-digit", hour12: false };
  const format = new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", options);
  return splits.map((x) => format.format(new Date(x * 1000)));
}

function renderVerdict() {
  const box = $("verify");
  box.dataset.state = verdict.state;
  $("verify-title").textContent = t(verdict.state);
  $("verify-detail").textContent = verdict.state === "verified" ? t("detail")(data.records.length)
    : verdict.reason || "";
}

function detailLine(key, value) {
  let shown = value;
  if (typeof value === "boolean") shown = t(value ? "yes" : "no");
  else if (Array.isArray(value)) shown = value.join("、");
  else if (key === "result") shown = t(value);
  return `${t(key)}：${shown}`;
}

function renderTimeline() {
  const items = data.records.map((r, i) => {
    const li = el("li");
    li.dataset.seq = String(i);
    if (verdict.state === "failed" && verdict.bad !== null && i >= verdict.bad) li.className = "tt-bad";
    li.append(el("div", "tt-ev", t(r.type)), el("div", "tt-when", `${when(r.at)} · ${r.place.name}`));
    li.append(el("div", "tt-data", r.actor));
    for (const [k, v] of Object.entries(r.data || {})) {
      if (r.type === "registered" || k === "report") continue;
      li.append(el("div", "tt-data", detailLine(k, v)));
    }
    if (li.className === "tt-bad" && i === verdict.bad) li.append(el("div", "tt-data", t("changed")));
    return li;
  });
  $("timeline").replaceChildren(...items);
  const seen = new Map();
  for (const r of data.records) if (!seen.has(r.place.name)) seen.set(r.place.name, r.place);
  $("places").replaceChildren(...[...seen.values()].map((p) => {
    const coords = p.lat !== undefined ? ` (${p.lat.toFixed(4)}, ${p.lng.toFixed(4)})` : "";
    return el("li", "", p.name + coords);
  }));
}

function renderReports() {
  const tests = data.records.filter((r) => r.type === "tested");
  $("report-card").hidden = tests.length === 0;
  $("reports").replaceChildren(...tests.map((r) => {
    const rep = r.data.report;
    const box = el("div", "tt-series");
    box.append(el("div", "tt-ev", `${r.data.lab} · ${t(r.data.result)}`));
    const a = el("a", "", t("open"));
    a.href = `/api/batches/${encodeURIComponent(data.batch.id)}/reports/${rep.sha256}`;
    a.target = "_blank";
    box.append(a, el("div", "tt-hash", `${t("hash")} ${rep.sha256}`));
    const check = el("button", "tt-btn", t("checkFile"));
    const out = el("span", "tt-small");
    check.addEventListener("click", async () => {
      const buf = await (await fetch(a.href)).arrayBuffer();
      const got = [...new Uint8Array(await crypto.subtle.digest("SHA-256", buf))]
        .map((x) => x.toString(16).padStart(2, "0")).join("");
      out.textContent = ` ${got === rep.sha256 ? t("fileOk") : t("fileBad")}`;
    });
    box.append(check, out);
    return box;
  }));
}

function renderCharts() {
  const series = data.series || [];
  $("chart-card").hidden = series.length === 0;
  const host = $("charts");
  host.replaceChildren();
  const width = Math.max(260, Math.min(600, host.clientWidth || 340));
  for (const s of series) {
    const box = el("div", "tt-series");
    box.dataset.series = s.series;
    box.append(el("h3", "", `${seriesName(s)} · ${s.device}`));
    const xs = [], mean = [], hi = [], lo = [], out = [];
    for (const [x, mn, avg, mx] of s.points) {
      xs.push(x); mean.push(avg); hi.push(mx); lo.push(mn);
      out.push(s.band && (mx > s.band[1] || mn < s.band[0]) ? (mx > s.band[1] ? mx : mn) : null);
    }
    const cols = [xs, mean, hi, lo, out];
    const lines = [{}, { label: t("mean"), stroke: "#166534", width: 2 },
      { label: t("max"), stroke: "#86a98f", width: 1 }, { label: t("min"), stroke: "#86a98f", width: 1 },
      { label: "!", stroke: "#b91c1c", width: 0, points: { show: true, size: 6, fill: "#b91c1c" } }];
    if (s.band) {
      cols.push(xs.map(() => s.band[1]), xs.map(() => s.band[0]));
      lines.push({ label: t("limit"), stroke: "#b91c1c", dash: [6, 4], width: 1 },
        { label: t("lower"), stroke: "#2563eb", dash: [6, 4], width: 1 });
    }
    const chart = el("div", "tt-chart");
    box.append(chart);
    host.append(box);
    new uPlot({ width, height: 180, series: lines, legend: { show: false },
      axes: [{ values: timeTicks }, { size: 40 }], scales: { x: { time: true } } }, cols, chart);
    const band = s.band ? t("band")(s.band[0], s.band[1], s.unit) : "";
    box.append(el("p", "tt-small", band));
    if (s.excursions.length) {
      for (const e of s.excursions) {
        const peak = s.band && e.max > s.band[1] ? e.max : e.min;
        box.append(el("p", "tt-exc", `⚠ ${t("excursion")(when(e.from), when(e.to), peak, s.unit)}`));
      }
    } else if (s.band) {
      box.append(el("p", "tt-okline", `✓ ${t("within")}`));
    }
  }
}

async function drawQr() {
  const { default: QRCode } = await import("/static/vendor/qrcode.js");
  await QRCode.toCanvas($("qr"), data.url, { width: 160, margin: 1 });
}

function render() {
  renderStatic();
  renderVerdict();
  renderTimeline();
  renderReports();
  renderCharts();
}

async function main() {
  if (embedded) {
    document.querySelector(".tt-top").hidden = true;
    document.querySelector(".tt-share").hidden = true;
  }
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    keepLang(lang);
    render();
  });
  if (!data.batch) {
    for (const s of document.querySelectorAll(".tt-card")) s.hidden = true;
    $("missing").hidden = false;
    $("missing").textContent = t("missing");
    $("product").textContent = t("missing");
    document.body.dataset.ready = "missing";
    return;
  }
  performance.mark("trace:start");
  renderStatic();
  renderTimeline();
  renderReports();
  performance.mark("trace:timeline");
  renderCharts();
  performance.mark("trace:charts");
  verdict = await verifyChain(data.records, data.head, data.key, data.batch.id);
  performance.mark("trace:verified");
  renderVerdict();
  renderTimeline();
  document.body.dataset.ready = String(performance.now());
  window.livecoreTrace = { verdict, data };
  if (!embedded) drawQr().catch(() => {});
}

main();
