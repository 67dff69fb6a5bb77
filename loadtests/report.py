"""The replay's HTML report: one self-contained file, plots drawn by uPlot inlined into it.

The page holds the run's figures (a table), the event mix against the
trace, and five plots over the run's seconds: delivered and sent events per
second, latency percentiles (p50/p95/p99), connected clients, errors by code,
and the server's CPU and RSS when the nodes were local. The plots are drawn by
uPlot, the same bundle the server's pages use (``signalling/static/vendor/``,
built from the committed npm lockfile by ``make vendor``), copied into the
page with its CSS, so the file opens anywhere, offline, with no CDN.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).resolve().parent.parent / "signalling" / "static" / "vendor"
_EXPORT = re.compile(r"export\s*\{\s*([\w$]+)\s+as\s+default\s*\}\s*;?\s*$")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>livecore replay: {title}</title>
<style>{uplot_css}
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 10px; border-bottom: 1px solid #eee;
text-align: left; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.verdict {{ font-weight: 600; }} .bad {{ color: #b00; }} .good {{ color: #070; }}
.plot {{ margin: 8px 0 20px; }}
</style></head>
<body>
<h1>Replay of {title}</h1>
<p class="verdict {verdict_class}">{verdict}</p>
<h2>Figures</h2>
<table id="figures">{figures}</table>
<h2>Event mix (replayed vs. trace &times; scale)</h2>
<table id="mix"><tr><th>kind</th><th>expected</th><th>sent</th><th>error %</th></tr>{mix}</table>
<h2>Over time</h2>
<div id="plots"></div>
<script type="application/json" id="data">{data}</script>
<script type="module">
{uplot_js}
const data = JSON.parse(document.getElementById("data").textContent);
const width = Math.min(1060, window.innerWidth - 40);
const colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
for (const plot of data.plots) {{
  const box = document.createElement("div");
  box.className = "plot";
  box.dataset.title = plot.title;
  document.getElementById("plots").appendChild(box);
  const series = [{{}}].concat(plot.series.map((s, i) => ({{
    label: s.label, stroke: colours[i % colours.length], width: 2, scale: s.scale || "y",
  }})));
  const axes = [{{label: "seconds"}}, {{label: plot.unit, scale: "y"}}];
  if (plot.series.some((s) => s.scale === "y2")) {{
    axes.push({{label: plot.unit2, scale: "y2", side: 1, grid: {{show: false}}}});
  }}
  new uPlot({{title: plot.title, width, height: 260, series, axes,
             scales: {{x: {{time: false}}}}}},
            [data.t].concat(plot.series.map((s) => s.values)), box);
}}
document.body.dataset.plotted = String(data.plots.length);
</script>
</body></html>
"""


def _uplot() -> tuple[str, str]:
    """uPlot's bundle as module code defining ``uPlot``, and its CSS."""
    try:
        source = (VENDOR / "uplot.js").read_text(encoding="utf-8")
        css = (VENDOR / "uplot.css").read_text(encoding="utf-8")
    except OSError as exc:
        raise RuntimeError(f"the uPlot bundle is missing ({exc}); run `make vendor`") from exc
    match = _EXPORT.search(source.rstrip())
    if match is None:
        raise RuntimeError("uplot.js does not end with `export {x as default}`: rebuild vendor")
    code = source.rstrip()[: match.start()] + f"\nconst uPlot = {match.group(1)};\n"
    return code.replace("</script", "<\\/script"), css


def _row(name: str, value: Any) -> str:
    return f"<tr><th>{html.escape(name)}</th><td class='n'>{html.escape(str(value))}</td></tr>"


def render(result: dict[str, Any], series: dict[str, Any], *, title: str,
           missed: list[str]) -> str:  # fmt: skip
    """The report page for one run (``series``: per-second lists; see ``replay``)."""
    uplot_js, uplot_css = _uplot()
    lat = result["latency_ms"]
    figures = "".join(
        _row(name, value)
        for name, value in [
            ("clients established", result["clients_established"]),
            ("clients failed", result["clients_failed"]),
            ("messages sent", result["sent"]),
            ("events delivered", result["delivered"]),
            ("events lost", result["lost"]),
            ("latency p50 / p95 / p99 / max (ms)",
             f"{lat['p50']} / {lat['p95']} / {lat['p99']} / {lat['max']}"),
            ("errors", result["errors"]),
            ("errors by code",
             ", ".join(f"{k}: {v}" for k, v in result["errors_by_code"].items()) or "none"),
            ("delivered per second (peak)", result.get("delivered_per_s_peak")),
            ("comment inter-arrival KS distance", result.get("interarrival_ks")),
            ("server CPU % (mean)", result.get("server_cpu_pct")),
            ("server RSS MB (max)", result.get("server_rss_mb")),
            ("wall time (s)", result.get("wall_s")),
        ]
    )  # fmt: skip
    mix = "".join(
        f"<tr><td>{html.escape(kind)}</td><td class='n'>{row['expected']}</td>"
        f"<td class='n'>{row['sent']}</td><td class='n'>{row['error_pct']}</td></tr>"
        for kind, row in result.get("event_mix", {}).items()
    )
    plots = [
        {"title": "Events per second", "unit": "events/s", "series": [
            {"label": "delivered", "values": series["delivered"]},
            {"label": "sent", "values": series["sent"], "scale": "y2"}], "unit2": "messages/s"},
        {"title": "Latency (send → receive, sampled viewers)", "unit": "ms", "series": [
            {"label": k, "values": series[k]} for k in ("p50", "p95", "p99")]},
        {"title": "Connected clients", "unit": "clients", "series": [
            {"label": "connected", "values": series["connected"]}]},
        {"title": "Errors by code (per second)", "unit": "errors/s", "series": [
            {"label": code, "values": values} for code, values in series["errors"].items()]
            or [{"label": "none", "values": [0] * len(series["t"])}]},
    ]  # fmt: skip
    if series.get("cpu_pct"):
        plots.append({"title": "Server (local nodes)", "unit": "CPU %", "unit2": "RSS MB",
                      "series": [{"label": "CPU %", "values": series["cpu_pct"]},
                                 {"label": "RSS MB", "values": series["rss_mb"],
                                  "scale": "y2"}]})  # fmt: skip
    data = json.dumps({"t": series["t"], "plots": plots}).replace("</", "<\\/")
    verdict = "All SLOs met." if not missed else "SLOs missed: " + "; ".join(missed)
    return _PAGE.format(
        title=html.escape(title), uplot_css=uplot_css, uplot_js=uplot_js, data=data,
        figures=figures, mix=mix, verdict=html.escape(verdict),
        verdict_class="bad" if missed else "good",
    )  # fmt: skip


def write(path: Path, result: dict[str, Any], series: dict[str, Any], *, title: str,
          missed: list[str]) -> Path:  # fmt: skip
    path.write_text(render(result, series, title=title, missed=missed), encoding="utf-8")
    return path
