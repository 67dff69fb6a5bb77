"""Simulcast ingest: one pass-through receive chain per RTP stream id behind one m-section.

aiortc routes a bundle's RTP by SSRC and payload type to one ``RTCRtpReceiver``
per m-section, so three simulcast layers on one mid would be mixed into one
jitter buffer. ``RidDemux`` sits in that receiver's place (``intercept_rtp``)
and hands each packet to a receiver of its own layer, found by the packet's
rtp-stream-id (RFC 8852 §3.1) or, for RTX, repaired-rtp-stream-id (§3.2); a
publisher stops sending those extensions once its SSRCs are known, so each
SSRC is remembered with its layer (a new SSRC for a rid replaces the old one:
at most two per layer). A packet of no known layer is dropped and counted.

Each layer receiver is a stock ``RTCRtpReceiver`` on the same DTLS transport
(``media.aiortc_seams.receiver.layer_receiver``), made pass-through like any
publisher's receiver, so per layer: its own jitter buffer and depacketiser,
NACKs and receiver reports to that layer's SSRC, RTX unwrapped by the SSRC
its repaired-rid named, and a PLI sent to that layer's SSRC
(``media.passthrough.request_keyframe(layer)``). The layers share one REMB
estimator, so the publisher hears one estimate for the whole path.
"""

from __future__ import annotations

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from media import metrics
from media.aiortc_seams import receiver as receiver_seams
from media.simulcast import URI_REPAIRED_RID, URI_RID, Simulcast


class RidDemux:
    """Demultiplexes one video m-section's simulcast layers (see the module doc).

    Build it after ``setRemoteDescription`` and before ``createAnswer``: it
    negotiates the rid header extensions on ``transceiver`` and starts and
    stops the layer receivers with the m-section's own receiver.
    """

    def __init__(self, transceiver: RTCRtpTransceiver, simulcast: Simulcast) -> None:
        main = transceiver.receiver
        extensions = [RTCRtpHeaderExtensionParameters(id=simulcast.rid_ext, uri=URI_RID)]
        if simulcast.repaired_ext is not None:
            extensions.append(
                RTCRtpHeaderExtensionParameters(id=simulcast.repaired_ext, uri=URI_REPAIRED_RID)
            )
        receiver_seams.add_header_extensions(transceiver, extensions)
        self.main = main
        self.rids = simulcast.rids
        self.layers: dict[str, RTCRtpReceiver] = {
            rid: receiver_seams.layer_receiver(main) for rid in simulcast.rids
        }
        receiver_seams.share_bitrate_estimator(list(self.layers.values()))
        self._layer_of: dict[int, str] = {}
        self._media_ssrc: dict[str, int] = {}
        self._rtx_ssrc: dict[str, int] = {}
        self.unrouted = 0
        """Packets of no known layer (no rid yet, or an unknown one), dropped."""
        self.packets: dict[str, int] = dict.fromkeys(simulcast.rids, 0)
        receiver_seams.intercept_rtp(main, self._handle)
        receiver_seams.on_receive(main, self._started, self._stopped)

    def layer_of(self, ssrc: int) -> str | None:
        """The rid an SSRC (media or RTX) was learned for."""
        return self._layer_of.get(ssrc)

    async def _handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        ext = packet.extensions
        if ext.rtp_stream_id is not None:
            self._learn(self._media_ssrc, ext.rtp_stream_id, packet.ssrc)
        elif ext.repaired_rtp_stream_id is not None:
            self._learn(self._rtx_ssrc, ext.repaired_rtp_stream_id, packet.ssrc)
        rid = self._layer_of.get(packet.ssrc)
        layer = self.layers.get(rid) if rid is not None else None
        if layer is None or rid is None:
            self.unrouted += 1
            return
        self.packets[rid] += 1
        await receiver_seams.deliver(layer, packet, arrival_time_ms)

    def _learn(self, table: dict[str, int], rid: str, ssrc: int) -> None:
        if rid not in self.layers or table.get(rid) == ssrc:
            return
        old = table.get(rid)
        if old is not None:
            self._layer_of.pop(old, None)
        elif table is self._media_ssrc:
            metrics.simulcast.inc("layers_seen")
        table[rid] = ssrc
        self._layer_of[ssrc] = rid
        media, rtx = self._media_ssrc.get(rid), self._rtx_ssrc.get(rid)
        if media is not None and rtx is not None:
            receiver_seams.map_rtx(self.layers[rid], rtx, media)

    async def _started(self, parameters: RTCRtpReceiveParameters) -> None:
        for layer in self.layers.values():
            await receiver_seams.start_layer_receiver(layer, self.main, parameters)

    async def _stopped(self) -> None:
        for layer in self.layers.values():
            await layer.stop()
