// Live line charts with uPlot (from npm, bundled in /static/vendor/uplot.js):
//   const c = lineChart(el, [{label, color}], {height})
//   c.push(time, [v1, v2]) keeps the last MAX points; c.set(xs, [ys…]) replaces them.
import uPlot from "/static/vendor/uplot.js";

const MAX = 600;

export function lineChart(el, series, { height = 170, bars = false } = {}) {
  const data = [[], ...series.map(() => [])];
  const width = () => Math.max(200, el.clientWidth || 320);
  const opts = {
    width: width(), height,
    legend: { show: series.length > 1, live: false },
    cursor: { show: false },
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.15)] } },
    axes: [{ stroke: "#595959", grid: { stroke: "#eee" } }, { stroke: "#595959", grid: { stroke: "#eee" }, size: 44 }],
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
