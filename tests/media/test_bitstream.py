"""Keyframe detection on real encoder output and hand-made edge cases."""

from __future__ import annotations

from media.bitstream import (
    START_CODE,
    H264ParameterSets,
    h264_nal_types,
    h264_nal_units,
    is_h264_keyframe,
    is_vp8_keyframe,
)
from tests.media.conftest import GOP
from tests.media.sources import EncodedClip

SPS = bytes([0x67, 0x42, 0xC0, 0x1F, 0xAA])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84, 0x00, 0x33])
SLICE = bytes([0x41, 0x9A, 0x02])


def annexb(*nals: bytes, three_byte: bool = False) -> bytes:
    code = b"\x00\x00\x01" if three_byte else START_CODE
    return b"".join(code + nal for nal in nals)


def test_nal_units_with_both_start_code_lengths() -> None:
    """NAL units are found after 3- and 4-byte start codes, without trailing zeros."""
    data = annexb(SPS) + annexb(PPS, three_byte=True) + annexb(IDR)
    units = [data[s:e] for _, s, e in h264_nal_units(data)]
    assert units == [SPS, PPS, IDR]
    assert h264_nal_types(data) == [7, 8, 5]


def test_h264_keyframe_needs_idr_and_parameter_sets() -> None:
    """Only an IDR with SPS and PPS can start a decoder."""
    assert is_h264_keyframe(annexb(SPS, PPS, IDR))
    assert not is_h264_keyframe(annexb(IDR))
    assert not is_h264_keyframe(annexb(SPS, PPS, SLICE))
    assert not is_h264_keyframe(b"")


def test_parameter_sets_are_prepended_to_a_bare_idr() -> None:
    """An IDR sent without SPS/PPS becomes self-contained once they were seen."""
    sets = H264ParameterSets()
    assert sets.complete(annexb(IDR)) == (annexb(IDR), False)
    first = annexb(SPS, PPS, IDR)
    assert sets.complete(first) == (first, True)
    assert sets.complete(annexb(SLICE)) == (annexb(SLICE), False)
    completed, keyframe = sets.complete(annexb(IDR))
    assert keyframe and h264_nal_types(completed) == [7, 8, 5]
    assert is_h264_keyframe(completed)


def test_libx264_output_keyframes(h264_clip: EncodedClip) -> None:
    """Detection agrees with the encoder's keyframe flag on every frame."""
    detected = [is_h264_keyframe(data) for data, _ in h264_clip.frames]
    assert detected == [flag for _, flag in h264_clip.frames]
    assert [i for i, key in enumerate(detected) if key] == list(range(0, 150, GOP))


def test_libvpx_output_keyframes(vp8_clip: EncodedClip) -> None:
    """The VP8 key frame bit agrees with the encoder's keyframe flag."""
    detected = [is_vp8_keyframe(data) for data, _ in vp8_clip.frames]
    assert detected == [flag for _, flag in vp8_clip.frames]
    assert [i for i, key in enumerate(detected) if key] == list(range(0, 150, GOP))
    assert not is_vp8_keyframe(b"\x00\x00\x00")
