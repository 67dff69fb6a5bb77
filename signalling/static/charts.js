// Live line charts with uPlot (from npm, bundled in /static/vendor/uplot.js):
//   const c = lineChart(el, [{label, color}], {height})
//   c.push(time, [v1, v2]) keeps the last MAX points; c.set(xs, [ys…]) replaces them.
import uPlot from "/static/vendor/uplot.js";

const MAX = 600;
const pad = (n) => String(n).padStart(2, "0");

/** Axis labels as the clock on the wall: 09:10, or 09:10:05 for spans under 10 minutes. */
function clockLabels(u, splits) {
  const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
  return splits.map((s) => {
    const d = new Date(s * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return span < 600 ? `${hm}:${pad(d.getSeconds())}` : hm;
  });
}

export function lineChart(el, series, { height = 170, bars = false } = {}) {
  const data = [[], ...series.map(() => [])];
  const width = () => Math.max(200, el.clientWidth || 320);
  const opts = {
    width: width(), height,
    legend: { show: series.length > 1, live: false },
    cursor: { show: false },
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.15)] } },
    axes: [{ stroke: "#595959", grid: { stroke: "#eee" }, values: clockLabels }, { stroke: "#595959", grid: { stroke: "#eee" }, size: 44 }],
    series: [{}, ...series.map((s) => ({
      label: s.label, stroke: s.color, width: 2, fill: `${s.color}22`,
      paths: bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined, points: { show: false },
    }))],
  };
  const plot = new uPlot(opts, data, el);
  const resize = () => plot.setSize({ width: width(), height });
  window.addEventListener("resize", resize);
  return {
    plot,
    push(x, values) {
      data[0].push(x);
      values.forEach((v, i) => data[i + 1].push(v));
      if (data[0].length > MAX) for (const d of data) d.shift();
      plot.setData(data);
    },
    set(xs, columns) {
      data[0] = xs.slice(-MAX);
      columns.forEach((c, i) => { data[i + 1] = c.slice(-MAX); });
      plot.setData(data);
    },
    relabel(labels) {
      labels.forEach((l, i) => { plot.series[i + 1].label = l; });
      const legend = el.querySelectorAll(".u-legend .u-series th .u-label");
      legend.forEach((node, i) => { if (i > 0 && labels[i - 1]) node.textContent = labels[i - 1]; });
    },
    get points() { return data[0].length; },
  };
}
