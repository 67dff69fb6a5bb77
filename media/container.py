"""Pure helpers for writing and reading fragmented MP4 (no I/O, no codec library).

- ``h264_dimensions(sps)``: picture size from an H.264 sequence parameter set
  (ITU-T H.264 §7.3.2.1.1, cropping §7.4.2.1.1), so the muxer can describe
  the track without decoding a frame.
- ``opus_head(channels)``: the ``OpusHead`` identification header (RFC 7845
  §5.1) that MP4's ``dOps`` box is built from.
- ``BoxSplitter``: cuts a byte stream into top-level ISO BMFF boxes
  (ISO/IEC 14496-12 §4.2); ``fragment_start(moof, track_id)`` reads a track's
  ``tfdt`` base media decode time (§8.8.12) from a movie fragment;
  ``fragment_info(moof, track_id)`` adds its duration, sample count and whether
  it starts on a sync sample (the writer's parts).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from media.bitstream import NAL_PPS, NAL_SPS, h264_nal_units

HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class _Bits:
    """MSB-first bit reader over an RBSP (emulation-prevention bytes removed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + bits.se() + 256) % 256
        last = nxt if nxt != 0 else last


def h264_dimensions(sps: bytes) -> tuple[int, int]:
    """(width, height) of the pictures an SPS NAL unit (header byte included) describes."""
    try:
        bits = _Bits(sps[1:])
        profile = bits.u(8)
        bits.u(16)  # constraint flags, level
        bits.ue()  # seq_parameter_set_id
        chroma = 1
        if profile in HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                bits.u(1)
            bits.ue(), bits.ue(), bits.u(1)  # bit depths, qpprime bypass
            if bits.u(1):
                for i in range(8 if chroma != 3 else 12):
                    if bits.u(1):
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.u(1), bits.se(), bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue(), bits.u(1)  # max_num_ref_frames, gaps allowed
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.u(1)
        if not frame_mbs_only:
            bits.u(1)
        bits.u(1)  # direct_8x8_inference
        crop = (0, 0, 0, 0)
        if bits.u(1):
            crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    except IndexError:
        raise ValueError("truncated SPS") from None
    sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}.get(chroma, (2, 2))
    crop_x = sub_w if chroma else 1
    crop_y = (sub_h if chroma else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_x * (crop[0] + crop[1])
    height = height_units * 16 * (2 - frame_mbs_only) - crop_y * (crop[2] + crop[3])
    return width, height


def h264_parameter_sets(annexb: bytes) -> tuple[bytes, bytes] | None:
    """The first SPS and PPS NAL units of an Annex-B access unit, or None."""
    sps = pps = None
    for nal_type, start, end in h264_nal_units(annexb):
        if nal_type == NAL_SPS and sps is None:
            sps = annexb[start:end]
        elif nal_type == NAL_PPS and pps is None:
            pps = annexb[start:end]
    return (sps, pps) if sps and pps else None


def opus_head(channels: int = 2, pre_skip: int = 312, rate: int = 48000) -> bytes:
    """RFC 7845 §5.1 identification header, channel mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, 0)


class BoxSplitter:
    """Feed bytes, get complete top-level boxes ``(type, bytes)`` back (bounded buffer)."""

    def __init__(self, max_box: int = 64 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._max = max_box

    def feed(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._buf += data
        while len(self._buf) >= 8:
            size, kind = struct.unpack_from(">I4s", self._buf)
            header = 8
            if size == 1:
                if len(self._buf) < 16:
                    return
                size = struct.unpack_from(">Q", self._buf, 8)[0]
                header = 16
            if size < header or size > self._max:
                raise ValueError(f"bad box size {size} for {kind!r}")
            if len(self._buf) < size:
                return
            box = bytes(self._buf[:size])
            del self._buf[:size]
            yield kind, box


def child_boxes(box: bytes, offset: int = 8) -> Iterator[tuple[bytes, bytes]]:
    """The boxes inside a container box (``box`` includes its own header)."""
    pos = offset
    while pos + 8 <= len(box):
        size, kind = struct.unpack_from(">I4s", box, pos)
        if size < 8 or pos + size > len(box):
            return
        yield kind, box[pos : pos + size]
        pos += size


def fragment_start(moof: bytes, track_id: int) -> int | None:
    """``baseMediaDecodeTime`` of ``track_id`` in a ``moof`` box (its timescale), or None."""
    for kind, traf in child_boxes(moof):
        if kind != b"traf":
            continue
        tid = None
        for sub, body in child_boxes(traf):
            if sub == b"tfhd":
                tid = struct.unpack_from(">I", body, 12)[0]
            elif sub == b"tfdt" and tid == track_id:
                version = body[8]
                return int(struct.unpack_from(">Q" if version else ">I", body, 12)[0])
    return None


@dataclass(frozen=True, slots=True)
class FragmentInfo:
    """One track's samples in a movie fragment: where they start, how long they last."""

    start: int
    """``tfdt`` base media decode time (the track's timescale)."""
    duration: int
    """The sum of the samples' durations (``trun``, else ``tfhd``'s default)."""
    samples: int
    sync_first: bool
    """Whether the first sample is a sync sample (a keyframe; ISO/IEC 14496-12 §8.8.3.1)."""


def _is_sync(flags: int) -> bool:
    # sample_is_non_sync_sample is bit 16; sample_depends_on (bits 24-25) 2: depends on none.
    return not (flags >> 16) & 1


def _trun(body: bytes, default_duration: int, default_flags: int | None) -> tuple[int, int, bool]:
    flags = int.from_bytes(body[9:12], "big")
    count = struct.unpack_from(">I", body, 12)[0]
    pos = 16 + (4 if flags & 0x01 else 0)
    first_flags = default_flags
    if flags & 0x04:
        first_flags = struct.unpack_from(">I", body, pos)[0]
        pos += 4
    total = 0
    for i in range(count):
        duration = default_duration
        if flags & 0x100:
            duration = struct.unpack_from(">I", body, pos)[0]
            pos += 4
        if flags & 0x200:
            pos += 4
        if flags & 0x400:
            if i == 0 and not flags & 0x04:
                first_flags = struct.unpack_from(">I", body, pos)[0]
            pos += 4
        if flags & 0x800:
            pos += 4
        total += duration
    return total, count, first_flags is None or _is_sync(first_flags)


def fragment_info(moof: bytes, track_id: int) -> FragmentInfo | None:
    """``track_id``'s start, duration, sample count and first-sample sync flag in a
    ``moof`` (§8.8.7 ``tfhd``, §8.8.8 ``trun``, §8.8.12 ``tfdt``), or None."""
    for kind, traf in child_boxes(moof):
        if kind != b"traf":
            continue
        tid, start, default_duration, default_flags = None, None, 0, None
        runs: list[tuple[int, int, bool]] = []
        for sub, body in child_boxes(traf):
            if sub == b"tfhd":
                flags = int.from_bytes(body[9:12], "big")
                tid = struct.unpack_from(">I", body, 12)[0]
                pos = 16 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                if flags & 0x08:
                    default_duration = struct.unpack_from(">I", body, pos)[0]
                    pos += 4
                pos += 4 if flags & 0x10 else 0
                if flags & 0x20:
                    default_flags = struct.unpack_from(">I", body, pos)[0]
            elif sub == b"tfdt":
                version = body[8]
                start = int(struct.unpack_from(">Q" if version else ">I", body, 12)[0])
            elif sub == b"trun":
                runs.append(_trun(body, default_duration, default_flags))
        if tid == track_id and start is not None and runs:
            return FragmentInfo(start, sum(r[0] for r in runs), sum(r[1] for r in runs),
                                runs[0][2])  # fmt: skip
    return None
