"""The replay's HTML report renders in headless Chromium with its plots and figures."""

from __future__ import annotations

from pathlib import Path

from loadtests import report
from tests.browser import chromium_path

RESULT = {
    "clients_established": 40, "clients_failed": 1, "reconnects": 3, "sent": 900,
    "delivered": 12000, "lost": 0, "latency_ms": {"p50": 21.0, "p95": 60.0, "p99": 90.0,
                                                  "max": 120.0},
    "errors": 2, "errors_by_code": {"rate_limited": 2}, "event_mix_error_pct": {"comment": 0.0},
    "event_mix": {"comment": {"expected": 100, "sent": 100, "error_pct": 0.0}},
    "interarrival_ks": 0.04, "delivered_per_s_peak": 3000, "server_cpu_pct": 30.0,
    "server_rss_mb": 90.0, "wall_s": 12.0,
}  # fmt: skip
SERIES = {
    "t": [0, 1, 2, 3], "sent": [10, 300, 400, 190], "delivered": [50, 3000, 5000, 3950],
    "connected": [5, 30, 40, 38], "p50": [20, 21, 22, None], "p95": [50, 60, 61, None],
    "p99": [80, 90, 91, None], "errors": {"rate_limited": [0, 1, 1, 0]},
    "cpu_pct": [10, 30, 40, 35], "rss_mb": [85, 88, 90, 90],
}  # fmt: skip


def test_report_renders_with_plots(tmp_path: Path) -> None:
    """Five uPlot canvases, the figures table and the verdict, no script error, no network."""
    chromium = chromium_path()
    from playwright.sync_api import sync_playwright

    path = report.write(tmp_path / "r.html", RESULT, SERIES, title="t", missed=["p99_ms = 90"])
    html = path.read_text()
    assert "http://" not in html.split("<script", 1)[0] and "cdn" not in html.lower()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1150, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-plotted='5']", timeout=10_000)
        assert page.locator(".plot canvas").count() == 5
        titles = page.locator(".u-title").all_inner_texts()
        assert "Connected clients" in titles and "Server (local nodes)" in titles
        assert "12000" in page.locator("#figures").inner_text()
        assert "SLOs missed" in page.locator(".verdict").inner_text()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == [] and all(u.startswith("file://") for u in requests)
