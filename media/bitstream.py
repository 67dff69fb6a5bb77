"""Pure bitstream inspection: where an encoded frame can start a decoder.

No I/O, no event loop, no codec library: bytes in, facts out. Used by the
pass-through receiver to flag keyframes and by tests.

- H.264 (ITU-T H.264 §7.3.1, Annex B): a frame is a sequence of NAL units,
  each after a ``00 00 01`` (or ``00 00 00 01``) start code; the NAL unit type
  is the low 5 bits of the byte after it. A decoder can start on an IDR slice
  (type 5) once it has a sequence and a picture parameter set (types 7, 8).
- VP8 (RFC 6386 §9.1): the first bit of the frame tag is 0 for a key frame,
  and a key frame carries the start code ``9d 01 2a`` at bytes 3..5.
"""

from __future__ import annotations

from collections.abc import Iterator

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

START_CODE = b"\x00\x00\x00\x01"
VP8_KEYFRAME_START_CODE = b"\x9d\x01\x2a"


def h264_nal_units(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(nal_type, start, end)`` for each NAL unit of an Annex-B buffer.

    ``data[start:end]`` is the NAL unit without its start code (a trailing
    zero byte belonging to the next 4-byte start code is left out). Bytes
    before the first start code are ignored. Emulation prevention (§7.4.1)
    guarantees ``00 00 01`` never occurs inside a NAL unit.
    """
    find = data.find
    pos = find(b"\x00\x00\x01")
    while pos != -1:
        start = pos + 3
        if start >= len(data):
            return
        nxt = find(b"\x00\x00\x01", start)
        if nxt == -1:
            end = len(data)
        else:
            end = nxt - 1 if data[nxt - 1] == 0 else nxt
        yield data[start] & 0x1F, start, end
        pos = nxt


def h264_nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex-B buffer, in order."""
    return [nal_type for nal_type, _, _ in h264_nal_units(data)]


def is_h264_keyframe(data: bytes) -> bool:
    """True if ``data`` holds an IDR slice and the SPS and PPS a decoder needs first."""
    types = set(h264_nal_types(data))
    return NAL_IDR in types and NAL_SPS in types and NAL_PPS in types


def is_vp8_keyframe(data: bytes) -> bool:
    """True if ``data`` (a VP8 frame, RTP descriptor removed) is a key frame."""
    return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == VP8_KEYFRAME_START_CODE


class H264ParameterSets:
    """Remembers the latest SPS/PPS and makes IDR frames self-contained.

    Encoders usually repeat SPS and PPS before every IDR, but RFC 6184 does not
    require it (they may have been sent once, earlier). A relay that starts a
    viewer on an IDR must hand it the parameter sets too, so ``complete``
    prepends the remembered ones to an IDR frame that lacks them.
    """

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def complete(self, data: bytes) -> tuple[bytes, bool]:
        """Return ``(frame, keyframe)`` for one Annex-B access unit.

        ``keyframe`` is True when the returned frame can start a decoder: it
        has an IDR slice and, in it or prepended from earlier frames, an SPS
        and a PPS. Other frames are returned unchanged with ``keyframe=False``.
        """
        has_idr = has_sps = has_pps = False
        for nal_type, start, end in h264_nal_units(data):
            if nal_type == NAL_SPS:
                self.sps, has_sps = data[start:end], True
            elif nal_type == NAL_PPS:
                self.pps, has_pps = data[start:end], True
            elif nal_type == NAL_IDR:
                has_idr = True
        if not has_idr:
            return data, False
        if has_sps and has_pps:
            return data, True
        if self.sps is None or self.pps is None:
            return data, False
        # SPS then PPS, both first (a PPS is parsed against its SPS); a copy the
        # frame already carries is repeated after them, which is harmless.
        return START_CODE + self.sps + START_CODE + self.pps + data, True
