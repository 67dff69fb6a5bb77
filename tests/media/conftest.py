"""Fixtures for the media tests: clips encoded once per session, a clean codec counter."""

from __future__ import annotations

import pytest

from media import metrics
from tests.media.sources import EncodedClip, encode_opus_clip, encode_video_clip

GOP = 60
"""Frames between the clips' keyframes (2 s at 30 fps): a late viewer would wait up to that."""


@pytest.fixture(scope="session")
def h264_clip() -> EncodedClip:
    """5 s of test pattern, H.264 constrained baseline, Annex-B, keyframe every 2 s."""
    return encode_video_clip("video/H264", frames=150, gop=GOP)


@pytest.fixture(scope="session")
def vp8_clip() -> EncodedClip:
    """5 s of test pattern, VP8, keyframe every 2 s."""
    return encode_video_clip("video/VP8", frames=150, gop=GOP)


@pytest.fixture(scope="session")
def opus_clip() -> EncodedClip:
    """5 s of a 440 Hz tone, 20 ms Opus frames."""
    return encode_opus_clip(5.0)


@pytest.fixture(autouse=True)
def _clean_codec_ops() -> None:
    metrics.codec_ops.reset()
