"""A camera clip for Chromium's fake capture device: detail and motion a real phone sees.

Chromium's built-in fake camera draws a mostly flat test pattern, which OpenH264
encodes at ~0.75 Mbit/s in 720p whatever its 1.5 Mbit/s budget, so a 1.2 Mbit/s
link carries the top simulcast layer and the ladder's rates are not a real
camera's. :func:`write_clip` makes a short looping MJPEG clip instead (Chromium:
``--use-file-for-fake-video-capture=FILE.mjpeg``, read at 30 fps): a textured
background (blobs of 16 and 32 pixels, muted colour) panning 8 pixels a frame,
a whole turn per loop (so the loop has no seam), and the frame's number drawn as
eight black/white blocks in the top left corner. x264 (veryfast, QP 26) needs
~1.4 Mbit/s for it at 720p, ~0.27 at 360p and ~0.15 at 180p: about twice what
Chromium's pattern needs, so the top layer uses its 1.5 Mbit/s budget. Harder
pictures were tried and are worse: OpenH264 (Chromium's H.264 encoder here)
meets a budget it cannot hold by skipping frames, not by coarser quantisation.
With fresh grain in every frame, with colour standing still under a panning
luma (no motion vector fits both), and with 8/16-pixel blobs (x264: 2.5 Mbit/s
at QP 26), every layer fell to 5-10 fps in the lab, and Chromium scaled the
one-layer encoding down to 180p.

MJPEG keeps it small: a 2 s loop of 1280x720 is ~2.7 MB (raw Y4M would be
~83 MB). Built with PyAV alone (swscale upscales random pixels into texture;
bytes are blended as big integers, halved first so no byte carries into the next).
"""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import av

#: Chromium reads an MJPEG file at this rate (``MjpegFileParser``).
FPS = 30
#: The background's blobs, in pixels: the fine and the coarse half of its texture.
DETAIL, COARSE = 16, 32
#: Pixels the background moves per frame: a multiple of JPEG's 8x8 blocks, so each
#: frame's compression artefacts move with the picture instead of adding noise.
SHIFT = 8
#: The background's luma contrast: a byte table around mid grey.
CONTRAST = bytes(range(256))
#: Byte table v -> v/2: two halves add up without a carry.
_HALF = bytes(v // 2 for v in range(256))
#: Chroma kept near grey (96..159): colour without a saturated rainbow.
_MUTED = bytes(96 + v // 4 for v in range(256))


def _upscaled(rng: random.Random, w: int, h: int, width: int, height: int) -> bytes:
    """Random ``w`` x ``h`` grey pixels scaled (bicubic) to ``width`` x ``height``: blobs
    whose size is ``width / w`` pixels, as packed rows."""
    w, h = max(2, w), max(2, h)  # a short clip's narrow turn still has texture
    small = av.VideoFrame(w, h, "gray")
    plane = small.planes[0]
    data = rng.randbytes(w * h)
    pad = bytes(plane.line_size - w)
    plane.update(b"".join(data[r * w : (r + 1) * w] + pad for r in range(h)) if pad else data)
    big = small.reformat(width=width, height=height, interpolation="BICUBIC").planes[0]
    raw, step = bytes(big), big.line_size
    if step == width:
        return raw
    return b"".join(raw[r * step : r * step + width] for r in range(height))


def _mix(a: bytes, table_a: bytes, b: bytes, table_b: bytes) -> bytes:
    """Per byte ``table_a[a] + table_b[b]`` (tables whose sums stay below 256)."""
    total = int.from_bytes(a.translate(table_a), "big")
    total += int.from_bytes(b.translate(table_b), "big")
    return total.to_bytes(len(a), "big")


def _luma(rows: list[bytes], frame: int, width: int) -> bytes:
    """Frame ``frame``'s luma: the background scrolled by ``frame`` x :data:`SHIFT`
    pixels, the frame number in blocks."""
    offset = frame * SHIFT
    y = bytearray(b"".join(row[offset : offset + width] for row in rows))
    for bit in range(8):
        block = (b"\xff" if frame >> bit & 1 else b"\x00") * 40
        for r in range(16, 56):
            start = r * width + 16 + bit * 48
            y[start : start + 40] = block
    return bytes(y)


def write_clip(path: Path, *, seconds: float = 2.0, width: int = 1280, height: int = 720) -> int:
    """Write a looping MJPEG clip of ``seconds`` at :data:`FPS` to ``path``; its size in
    bytes. Deterministic (a fixed seed): every run publishes the same pictures."""
    rng = random.Random(23)
    frames = max(1, round(seconds * FPS))
    turn = SHIFT * frames  # the background's period: one turn per loop
    coarse = _upscaled(rng, turn // COARSE, height // COARSE, turn, height)
    fine = _upscaled(rng, turn // DETAIL, height // DETAIL, turn, height)
    texture = _mix(coarse, _HALF, fine, _HALF).translate(CONTRAST)
    copies = -(-(width + turn) // turn)
    rows = [texture[r * turn : (r + 1) * turn] * copies for r in range(height)]
    # Colour pans with the picture (half the pixels, half the shift): a chroma that
    # stood still under a moving luma would match no motion vector (x264 at QP 32:
    # 2.7 Mbit/s for the 720p picture with still colour).
    cw, ch, cturn = width // 2, height // 2, turn // 2
    chroma = [_upscaled(rng, cturn // COARSE, ch // COARSE * 2, cturn, ch).translate(_MUTED)
              for _ in range(2)]  # fmt: skip
    ccopies = -(-(cw + cturn) // cturn)
    crows = [[c[r * cturn : (r + 1) * cturn] * ccopies for r in range(ch)] for c in chroma]
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, FPS)
    encoder.options = {"qscale": "5"}
    size = 0
    with path.open("wb") as out:
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuvj420p")
            cb, cr = (b"".join(row[i * SHIFT // 2 : i * SHIFT // 2 + cw] for row in c)
                      for c in crows)  # fmt: skip
            for plane, data, w in zip(frame.planes, (_luma(rows, i, width), cb, cr),
                                      (width, cw, cw), strict=True):  # fmt: skip
                pad = bytes(plane.line_size - w)
                plane.update(b"".join(data[r * w : (r + 1) * w] + pad
                                      for r in range(len(data) // w)) if pad else data)  # fmt: skip
            frame.pts = i
            packets = encoder.encode(frame)
            packets += encoder.encode(None) if i == frames - 1 else []  # flush at the end
            for packet in packets:
                chunk = bytes(packet)
                out.write(chunk)
                size += len(chunk)
    return size
