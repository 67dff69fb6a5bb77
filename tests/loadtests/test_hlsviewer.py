"""The adaptive lab's HLS figures from samples: behind live, renditions, moves."""

from __future__ import annotations

from loadtests.netlab.adaptive import layer_rates
from loadtests.netlab.hlsviewer import HlsSamples, WebrtcDelay, hls_figures

RENDITIONS = [{"height": h, "bitrate": b} for h, b in ((180, 2e5), (360, 6e5), (720, 1.6e6))]


def samples(rows: list[tuple[float, float | None, int, float]]) -> HlsSamples:
    out = HlsSamples()
    for at, behind, height, time in rows:
        out.add({"at": at * 1000, "behind": behind, "height": height, "time": time})
    return out


def test_figures_before_during_after_a_cap() -> None:
    """On 720p at 2-3 s behind; capped: down to 180p after 1 s; after: up to 720p after 2 s;
    the WebRTC viewer 0.2 s behind the node."""
    window = samples([(0, 2.0, 720, 0.0), (1, 3.0, 720, 1.0), (2, 2.5, 720, 2.0)])
    capped = samples([(10, 2.5, 720, 5.0), (11, 3.0, 180, 6.0), (12, 3.0, 180, 6.0)])
    after = samples([(20, 3.0, 180, 8.0), (21, 3.0, 360, 9.0), (22, 3.0, 720, 10.0)])
    webrtc = WebrtcDelay()
    for i, rtt in enumerate((0.02, 0.02, 0.02)):
        webrtc.add({"jb": 0.1 * i * 30, "emitted": 30 * i, "decode": 0.09 * i * 30 / 30,
                    "decoded": 30 * i, "rtt": rtt})  # fmt: skip
    figures = hls_figures(window, capped, after, webrtc, RENDITIONS)
    assert window.played
    assert figures["hls_behind_live_s"] == {"p50": 2.5, "max": 3.0, "samples": 3}
    assert figures["webrtc_behind_node_s"]["p50"] == 0.11  # 0.1 + 0.003 + 0.01
    assert figures["hls_behind_webrtc_s"] == {"p50": 2.39}
    assert figures["hls_levels"]["before"] == {"720p": 1.0}
    assert figures["hls_levels"]["capped"] == {"180p": 0.67, "720p": 0.33}
    assert figures["hls_switch_down_s"] == 1.0 and figures["hls_switch_up_s"] == 2.0
    assert figures["hls_stalled_pct"]["capped"] == 50.0


def test_a_move_down_after_the_cap_is_lifted() -> None:
    """hls.js still on 720p when the cap is lifted, down to 360p 1 s later, back 3 s later:
    down counted from the cap (11 s), up from the lift after that move (3 s)."""
    window = samples([(0, 2.0, 720, 0.0), (1, 2.0, 720, 1.0)])
    capped = samples([(10, 2.0, 720, 2.0), (20, 12.0, 720, 2.0)])
    after = samples([(20, 12.0, 720, 2.0), (21, 3.0, 360, 3.0), (23, 3.0, 720, 5.0)])
    figures = hls_figures(window, capped, after, WebrtcDelay(), RENDITIONS)
    assert figures["hls_switch_down_s"] == 11.0 and figures["hls_switch_up_s"] == 3.0


def test_never_played() -> None:
    """No date and a still video: not played, no figures to make up."""
    window = samples([(0, None, 0, 0.0), (1, None, 0, 0.0)])
    assert not window.played
    figures = hls_figures(window, HlsSamples(), HlsSamples(), WebrtcDelay(), [])
    assert figures["hls_behind_live_s"] is None and figures["hls_behind_webrtc_s"] is None
    assert figures["hls_switch_down_s"] is None and figures["hls_levels"]["before"] == {}


def test_layer_rates() -> None:
    """Bytes and frames over 2 s per rid; one encoding is named "single"."""
    before = {"at": 10.0, "sent": {"h": [720, 0, 0, "none"], "": [180, 1000, 10, "cpu"]}}
    after = {"at": 12.0, "sent": {"h": [720, 375_000, 60, "none"], "": [180, 1250, 70, "cpu"]}}
    rates = layer_rates(before, after)
    assert rates["h"] == {"height": 720, "kbit": 1500.0, "fps": 30.0, "limited_by": "none"}
    assert rates["single"] == {"height": 180, "kbit": 1.0, "fps": 30.0, "limited_by": "cpu"}
