"""Small SVG plots for benchmark results (no plotting library needed).

``cdf_svg`` draws the cumulative distribution of one or more samples — the
picture that shows a median and a tail at a glance — with the p50 and p99
marked. Open the file in any browser.
"""

from __future__ import annotations

import html
from pathlib import Path

WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 44
COLOURS = ("#e4572e", "#17bebb", "#76b041", "#7d5ba6")
MAX_POINTS = 400


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude: float = 10.0 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def cdf_svg(series: dict[str, list[float]], *, title: str, xlabel: str) -> str:
    """An SVG document: one CDF line per named sample, p50/p99 marked."""
    samples = {name: sorted(values) for name, values in series.items() if values}
    top = _nice(max((v[-1] for v in samples.values()), default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return LEFT + plot_w * min(value, top) / top

    def y(fraction: float) -> float:
        return TOP + plot_h * (1 - fraction)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">'
        f"{html.escape(title)}</text>",
    ]
    for i in range(5):  # grid and axis labels
        fraction, value = i / 4, top * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(fraction)}" '
                     f'y2="{y(fraction)}" stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{LEFT - 6}" y="{y(fraction) + 4}" text-anchor="end">'
                     f"{int(fraction * 100)}%</text>")  # fmt: skip
        parts.append(f'<text x="{x(value)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                     f"{value:g}</text>")  # fmt: skip
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
                 f"{html.escape(xlabel)}</text>")  # fmt: skip
    for index, (name, ordered) in enumerate(samples.items()):
        colour = COLOURS[index % len(COLOURS)]
        step = max(1, len(ordered) // MAX_POINTS)
        points = [(x(v), y((i + 1) / len(ordered))) for i, v in enumerate(ordered)][::step]
        points.append((x(ordered[-1]), y(1.0)))
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        p50, p99 = _quantile(ordered, 0.5), _quantile(ordered, 0.99)
        for q, value in ((0.5, p50), (0.99, p99)):
            parts.append(f'<circle cx="{x(value)}" cy="{y(q)}" r="3.5" fill="{colour}"/>')
        label = f"{name}: p50 {p50:.1f}, p99 {p99:.1f}, n={len(ordered)}"
        parts.append(f'<text x="{LEFT + 8}" y="{TOP + 16 + 16 * index}" fill="{colour}">'
                     f"{html.escape(label)}</text>")  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def write_cdf(path: Path, series: dict[str, list[float]], *, title: str, xlabel: str) -> Path:
    path.write_text(cdf_svg(series, title=title, xlabel=xlabel), encoding="utf-8")
    return path
