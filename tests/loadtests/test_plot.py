"""The SVG CDF plot of benchmark samples."""

from __future__ import annotations

from xml.etree import ElementTree

from loadtests.plot import cdf_svg


def test_cdf_is_valid_svg_with_quantiles() -> None:
    """One polyline per sample, labels with p50/p99, parseable SVG; empty samples skipped."""
    svg = cdf_svg({"a": [float(i) for i in range(1, 1001)], "b": [], "c": [5.0]},
                  title="t", xlabel="ms")  # fmt: skip
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 2
    labels = [t.text or "" for t in root.findall(f"{ns}text")]
    assert any(label.startswith("a: p50 501.0, p99 991.0, n=1000") for label in labels)
