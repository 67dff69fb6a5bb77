"""The names of one recorded layer's files, its description, and the multivariant playlist.

A recording directory holds one or more layers (a simulcast publisher's
encodings; today one). The top layer is named ``""`` and keeps the plain
names the replay and clips read (``init.mp4``, ``segNNNNNN.m4s``,
``index.m3u8``); another layer ``L`` (``[a-z0-9]{1,8}``) prefixes every name
with ``L_``. Each layer's writer keeps ``<prefix>layer.json`` (its
``LayerInfo``: size, codecs, frame rate and the bandwidth measured from its
segments) and rewrites ``master.m3u8`` from every layer's file
(``master_playlist``), so the multivariant playlist lists what is recorded.

Pure except ``write_master`` and ``read_infos`` (small files, the writer's thread).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

MASTER_NAME = "master.m3u8"
LAYER_RE = re.compile(r"^[a-z0-9]{1,8}$")
#: Every file name of a recording a URL may name (the media directory's rule).
FILE_RE = re.compile(r"^(?:[a-z0-9]{1,8}_)?(?:init(?:-\d{1,4})?\.mp4|seg\d{6}(?:\.\d{1,3})?\.m4s)$")
PART_RE = re.compile(r"^(?:[a-z0-9]{1,8}_)?seg(\d{6})\.(\d{1,3})\.m4s$")
PLAYLIST_RE = re.compile(r"^(?:([a-z0-9]{1,8})_)?index\.m3u8$")


@dataclass(frozen=True, slots=True)
class LayerNames:
    """File names of one layer (see the module doc)."""

    layer: str = ""

    def __post_init__(self) -> None:
        if self.layer and not LAYER_RE.match(self.layer):
            raise ValueError(f"bad layer name {self.layer!r}")

    @property
    def prefix(self) -> str:
        return f"{self.layer}_" if self.layer else ""

    def init(self, n: int) -> str:
        return f"{self.prefix}init.mp4" if n == 0 else f"{self.prefix}init-{n}.mp4"

    def segment(self, msn: int) -> str:
        return f"{self.prefix}seg{msn:06d}.m4s"

    def part(self, msn: int, index: int) -> str:
        return f"{self.prefix}seg{msn:06d}.{index}.m4s"

    @property
    def segment_glob(self) -> str:
        return f"{self.prefix}seg{'[0-9]' * 6}.m4s"

    @property
    def playlist(self) -> str:
        return f"{self.prefix}index.m3u8"

    @property
    def plain_playlist(self) -> str:
        """The same playlist without low-latency parts (what object storage gets)."""
        return f"{self.prefix}plain.m3u8"

    @property
    def inits(self) -> str:
        """Lines ``<init name> <first msn>``: which segments each init segment describes."""
        return f"{self.prefix}inits.txt"

    @property
    def info(self) -> str:
        return f"{self.prefix}layer.json"


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What the multivariant playlist says of one layer (RFC 8216 §4.3.4.2)."""

    layer: str
    width: int
    height: int
    codecs: str
    frame_rate: float
    bandwidth: int
    """Peak segment bit rate (bits/s) over the segments so far."""
    average_bandwidth: int


def avc_codec(sps: bytes) -> str:
    """The RFC 6381 ``avc1.PPCCLL`` string of an SPS NAL unit (header byte included)."""
    if len(sps) < 4:
        raise ValueError("truncated SPS")
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


def master_playlist(infos: list[LayerInfo]) -> str:
    """One ``EXT-X-STREAM-INF`` per layer, the largest picture first (then the highest
    bandwidth: a browser's encoder gives the top layer its bit rate last, so early
    measurements would put it below a smaller one; of equal pictures the top layer's,
    which records a simulcast host's best layer that sends); URIs relative to the room's HLS
    path (``index.m3u8`` for the top layer, ``L_index.m3u8`` else); ``FRAME-RATE`` the
    highest of the layers' (RFC 8216 §4.3.4.2: a maximum)."""
    # No EXT-X-INDEPENDENT-SEGMENTS here: a publisher with long GOPs gets segments cut
    # on non-keyframe parts, and each media playlist says so itself.
    lines = ["#EXTM3U", "#EXT-X-VERSION:9"]
    # One FRAME-RATE for every layer: the highest measured. The layers are one camera's
    # (a layer that dropped frames early is not a slower source), and hls.js never
    # switches up to a rendition of a lower FRAME-RATE: with 720p measured at 15.67 and
    # 180p at 19.54 a viewer that fell to 180p on a weak link stayed there.
    rate = max((info.frame_rate for info in infos), default=0.0)
    for info in sorted(infos, key=lambda i: (-i.width * i.height, i.layer != "", -i.bandwidth)):
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={max(1, info.bandwidth)},"
            f"AVERAGE-BANDWIDTH={max(1, info.average_bandwidth)},"
            f'CODECS="{info.codecs}",RESOLUTION={info.width}x{info.height},'
            f"FRAME-RATE={rate:.3f}"
        )
        lines.append(LayerNames(info.layer).playlist)
    return "\n".join(lines) + "\n"


def read_infos(directory: Path) -> list[LayerInfo]:
    """Every layer's ``layer.json`` in a recording directory (unreadable ones left out)."""
    infos = []
    for path in sorted(directory.glob("*layer.json")):
        try:
            infos.append(LayerInfo(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return infos


def info_json(info: LayerInfo) -> bytes:
    return json.dumps(asdict(info)).encode()
