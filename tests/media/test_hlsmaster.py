"""The multivariant playlist over a recording's layers."""

from __future__ import annotations

import re

from media.hlsmaster import LayerInfo, master_playlist


def layer(name: str, height: int, rate: float, bandwidth: int) -> LayerInfo:
    return LayerInfo(name, height * 16 // 9, height, "avc1.42e01f", rate, bandwidth, bandwidth)


def test_every_rendition_states_the_highest_frame_rate() -> None:
    """A lab run's ladder: 720p measured at 15.67 fps, 180p at 19.54. hls.js never
    switches up to a rendition of a lower FRAME-RATE, so a viewer that fell to 180p
    stayed there; the layers are one camera's, and each states the highest rate."""
    ladder = [layer("", 720, 15.67, 1_300_000), layer("m", 360, 18.2, 480_000)]
    text = master_playlist([*ladder, layer("l", 180, 19.54, 240_000)])
    assert re.findall(r"FRAME-RATE=([\d.]+)", text) == ["19.540"] * 3
    heights = re.findall(r"RESOLUTION=\d+x(\d+)", text)
    assert heights == ["720", "360", "180"]  # the largest picture first
    uris = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert uris == ["index.m3u8", "m_index.m3u8", "l_index.m3u8"]
