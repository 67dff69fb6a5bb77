"""fMP4 and bitstream helpers: SPS picture size, OpusHead, box splitting, tfdt."""

from __future__ import annotations

import struct

import pytest

from media.container import (
    BoxSplitter,
    fragment_start,
    h264_dimensions,
    h264_parameter_sets,
    opus_head,
)
from tests.media.sources import encode_video_clip


@pytest.mark.parametrize("size", [(320, 240), (1280, 720), (640, 360), (426, 240)])
def test_sps_dimensions(size: tuple[int, int]) -> None:
    """The picture size read from libx264's SPS, cropping included (720 = 45 MBs exactly,
    360 needs cropping from 368)."""
    clip = encode_video_clip("video/H264", frames=1, gop=30, size=size)
    sets = h264_parameter_sets(clip.frames[0][0])
    assert sets is not None
    assert h264_dimensions(sets[0]) == size


def test_truncated_sps_is_refused() -> None:
    with pytest.raises(ValueError):
        h264_dimensions(b"\x67\x42")


def test_opus_head() -> None:
    head = opus_head(2)
    assert head[:8] == b"OpusHead" and len(head) == 19 and head[9] == 2


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def test_box_splitter_on_any_chunking() -> None:
    """Boxes come out whole however the bytes are cut."""
    data = box(b"ftyp", b"isom") + box(b"moov", b"x" * 100) + box(b"mdat", b"y" * 7)
    for step in (1, 3, 7, len(data)):
        split = BoxSplitter()
        out = []
        for i in range(0, len(data), step):
            out += list(split.feed(data[i : i + step]))
        assert [k for k, _ in out] == [b"ftyp", b"moov", b"mdat"]
        assert b"".join(b for _, b in out) == data


def test_box_splitter_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        list(BoxSplitter().feed(struct.pack(">I4s", 3, b"bad!")))


def test_fragment_start_reads_tfdt() -> None:
    tfhd = box(b"tfhd", b"\x00\x02\x00\x00" + struct.pack(">I", 1))
    tfdt = box(b"tfdt", b"\x01\x00\x00\x00" + struct.pack(">Q", 180000))
    moof = box(b"moof", box(b"mfhd", b"\0" * 8) + box(b"traf", tfhd + tfdt))
    assert fragment_start(moof, 1) == 180000
    assert fragment_start(moof, 2) is None
