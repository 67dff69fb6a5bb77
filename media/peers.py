"""Peer connections of the media plane: explicit ICE configuration, codec choice.

ICE. An ``RTCPeerConnection`` built without a configuration contacts a public
STUN server (aiortc's default), and aioice binds a host candidate on every
interface except 127.0.0.1. ``MediaPeerConnection`` always passes an explicit
``RTCConfiguration`` (no ICE servers unless configured) and, when
``PeerConfig.host_addresses`` is set, gathers host candidates on exactly those
addresses. aioice 0.13 has no option for that, so the way chosen is a
per-connection override of the ICE connection's ``gather_candidates`` that
calls aioice's own ``get_component_candidates(component, addresses)`` with the
configured list (``media.aiortc_seams.ice.gather_on``, checked at import).
Remote candidates are filtered too: with loopback-only addresses, any remote
candidate that is not a loopback IP literal (a LAN address, an mDNS ``.local``
name that aioice would resolve by multicast) is dropped from the remote SDP and
from trickle.

Ports: aioice binds one ephemeral UDP port per connection (max-bundle: one per
peer connection and host address) and has no port-range option. With
``PeerConfig.udp_ports`` (``--udp-ports LO-HI``) host candidates are bound
inside that range instead (``media.udpports.PortRange`` through the
``gather_on`` seam); when it is used up, ``setLocalDescription`` raises
``media.udpports.PortsExhausted`` and the node answers ``node_full``.

Announced addresses. With ``PeerConfig.announce`` (``--announce-address
BOUND=PUBLIC``), ``localDescription`` names the public address wherever the
SDP names a bound one (``media.announce``, for a node behind 1:1 NAT); the
sockets stay on the bound address.

Consent. aioice holds a peer that stopped answering ICE consent checks
(RFC 7675) for about 30 s; every connection here checks consent every
``PeerConfig.consent_interval_s`` and fails once ``consent_expiry_s`` passed
without an answer (``media.aiortc_seams.ice.check_consent``), so a vanished
publisher or viewer is closed within a few seconds.

Codecs. aiortc's sender uses the first negotiated codec, so the answering
side sets preferences on its transceivers before ``setRemoteDescription``:
publishers get H.264 (packetization-mode=1, constrained baseline first) + RTX
when they offer it, else VP8 + RTX; Opus for audio. Viewers get exactly the
publisher's codec family, so forwarded bytes always match what they decode.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aioice.ice import get_host_addresses
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import CODECS
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcicetransport import RTCIceGatherer
from aiortc.rtcpeerconnection import filter_preferred_codecs, find_common_codecs
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

from media.aiortc_seams import ice as ice_seams
from media.aiortc_seams import receiver as receiver_seams
from media.aiortc_seams import srtp as dtls_seams
from media.announce import announce_map, announce_sdp
from media.passthrough import codec_family
from media.udpmux import UdpMux
from media.udpports import PortRange

# Peers with RSA DTLS certificates (GStreamer) can be DTLS servers to us; one shared
# certificate and one SSL context per certificate for every connection (see the seams).
dtls_seams.accept_rsa_dtls_servers()
dtls_seams.share_certificates()
# A viewer's video receiver never receives: its bitrate estimator is built on first use.
receiver_seams.build_bitrate_estimators_lazily()

LOOPBACK: tuple[str, ...] = ("127.0.0.1",)


class NegotiationError(Exception):
    """An offer cannot be answered (no common codec, wrong direction, closed publisher)."""


class PublisherGone(NegotiationError):
    """The publisher a viewer's offer asked for closed before the answer was made."""


def is_loopback(address: str) -> bool:
    """True for an IP literal in 127.0.0.0/8 or ::1 (names such as mDNS ``.local`` are not)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """How the media plane's peer connections use the network.

    ``ice_servers``: STUN/TURN servers, none by default (never aiortc's
    public default). ``host_addresses``: the local addresses host candidates
    are gathered on; ``None`` means every interface (aioice's default, for a
    server whose operator wants that). The default is loopback only, which is
    what tests, ``make run`` and load runs on shared machines must use.
    """

    ice_servers: tuple[RTCIceServer, ...] = ()
    host_addresses: tuple[str, ...] | None = LOOPBACK
    udp_ports: PortRange | None = None
    """Bind media sockets inside this range (None: aioice's ephemeral ports)."""
    udp_mux: Mapping[str, UdpMux] | None = None
    """One shared socket per ICE address for every connection (wins over ``udp_ports``)."""
    announce: tuple[tuple[str, str], ...] = ()
    """(bound, announced) pairs: the local SDP names the announced address (1:1 NAT)."""
    consent_interval_s: float = 1.0
    """Seconds between ICE consent checks (RFC 7675; aioice's own: 5 s)."""
    consent_expiry_s: float = 5.0
    """Seconds without an answered consent check before the connection fails (aioice: ~30 s)."""

    @property
    def loopback_only(self) -> bool:
        return self.host_addresses is not None and all(map(is_loopback, self.host_addresses))

    def allows_remote(self, address: str) -> bool:
        """Whether a remote candidate at ``address`` may be used."""
        return is_loopback(address) if self.loopback_only else True

    def rtc_configuration(self) -> RTCConfiguration:
        """The explicit configuration: these ICE servers only, one transport (max-bundle)."""
        return RTCConfiguration(
            iceServers=list(self.ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )


def restrict_host_addresses(
    gatherer: RTCIceGatherer,
    addresses: Sequence[str],
    ports: PortRange | None = None,
    muxes: Mapping[str, UdpMux] | None = None,
) -> None:
    """Make ``gatherer`` gather host candidates on ``addresses`` only (in ``ports`` if given).

    Must be applied before it gathers (``setLocalDescription``); applying it
    again is harmless. Raises ``RuntimeError`` if it already gathered.
    """
    connection = ice_seams.ice_connection(gatherer)
    wanted = list(addresses)
    if ice_seams.gathering_addresses(connection) == wanted:
        return
    if ice_seams.gathered(connection):
        raise RuntimeError("ICE candidates were gathered before the addresses were restricted")
    ice_seams.gather_on(connection, wanted, ports.bind if ports is not None else None, muxes)


def filter_candidates(sdp: str, allowed: Callable[[str], bool]) -> str:
    """``sdp`` without the ``a=candidate`` lines whose address ``allowed`` rejects."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            if len(fields) < 6 or not allowed(fields[4]):
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


def candidate_addresses(sdp: str) -> list[str]:
    """The connection address of every ``a=candidate`` line of ``sdp`` (RFC 8839 §5.1)."""
    return [
        line.split()[4]
        for line in sdp.splitlines()
        if line.startswith("a=candidate:") and len(line.split()) > 4
    ]


class MediaPeerConnection(RTCPeerConnection):
    """An ``RTCPeerConnection`` that applies a ``PeerConfig`` (see the module doc).

    Local host candidates are restricted, and consent checks set, on every ICE
    gatherer just before ``setLocalDescription`` gathers; remote candidates the config does not
    allow are dropped from ``setRemoteDescription`` and ``addIceCandidate``.
    """

    def __init__(self, config: PeerConfig | None = None) -> None:
        self.peer_config = config or PeerConfig()
        self._announce = announce_map(self.peer_config.announce)
        self._remote_usable = 0
        super().__init__(self.peer_config.rtc_configuration())

    @property
    def localDescription(self) -> RTCSessionDescription:
        """aiortc's local description, naming announced addresses instead of bound ones."""
        description = super().localDescription
        if description is None or not self._announce:
            return description
        return RTCSessionDescription(sdp=self.announced(description.sdp), type=description.type)

    def announced(self, sdp: str) -> str:
        """``sdp`` (a description or a fragment this side writes) with bound addresses
        named as announced (``media.announce``); as is when nothing is announced."""
        return announce_sdp(sdp, self._announce)

    def _ice_gatherers(self) -> list[RTCIceGatherer]:
        transports = [t.receiver.transport for t in self.getTransceivers()]
        if self.sctp is not None:
            transports.append(self.sctp.transport)
        gatherers: dict[int, RTCIceGatherer] = {}
        for dtls in transports:
            gatherer = dtls.transport.iceGatherer
            gatherers[id(gatherer)] = gatherer
        return list(gatherers.values())

    async def setLocalDescription(
        self, sessionDescription: RTCSessionDescription | None = None
    ) -> None:
        config = self.peer_config
        addresses = config.host_addresses
        if addresses is None and config.udp_mux is not None:
            addresses = tuple(config.udp_mux)
        if addresses is None and config.udp_ports is not None:
            addresses = tuple(get_host_addresses(use_ipv4=True, use_ipv6=True))
        for gatherer in self._ice_gatherers():
            if gatherer.state != "new":
                continue
            if addresses is not None:
                restrict_host_addresses(gatherer, addresses, config.udp_ports, config.udp_mux)
            ice_seams.check_consent(
                ice_seams.ice_connection(gatherer), config.consent_interval_s,
                config.consent_expiry_s,
            )  # fmt: skip
        await super().setLocalDescription(sessionDescription)

    async def setRemoteDescription(self, sessionDescription: RTCSessionDescription) -> None:
        sdp = filter_candidates(sessionDescription.sdp, self.peer_config.allows_remote)
        usable = sum(line.startswith("a=candidate:") for line in sdp.splitlines())
        self._remote_usable += usable
        if not self._remote_usable:
            sdp = _without_end_of_candidates(sdp)
        await super().setRemoteDescription(
            RTCSessionDescription(sdp=sdp, type=sessionDescription.type)
        )

    def forget_remote_candidates(self) -> None:
        """After an ICE restart: the remote candidates are gone, none is usable yet."""
        self._remote_usable = 0

    async def addIceCandidate(self, candidate: RTCIceCandidate | None) -> None:
        """Add a trickled candidate the config allows; end-of-candidates only once one was.

        A peer whose every candidate was dropped here (mDNS names, addresses
        outside ``host_addresses``) still connects through the peer-reflexive
        candidate its first check teaches (RFC 8445 §7.3.1.3; end-of-candidates
        does not stop that, RFC 8838 §14), but aioice prunes every component
        without a remote candidate at end-of-candidates and fails at once, so
        it would race the peer's first check. It is held back instead: the
        connect deadline ends a session that never connects.
        """
        if candidate is not None:
            if not self.peer_config.allows_remote(candidate.ip):
                return
            self._remote_usable += 1
        elif not self._remote_usable:
            return
        await super().addIceCandidate(candidate)


def _without_end_of_candidates(sdp: str) -> str:
    """``sdp`` without its ``a=end-of-candidates`` lines (see ``addIceCandidate``)."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    return newline.join(line for line in sdp.split(newline) if line != "a=end-of-candidates")


def create_peer_connection(config: PeerConfig | None = None) -> MediaPeerConnection:
    """A peer connection with an explicit configuration (loopback only by default)."""
    return MediaPeerConnection(config)


# -- codec preferences ---------------------------------------------------------


def _is_rtx(codec: RTCRtpCodecCapability) -> bool:
    return codec.mimeType.lower().endswith("/rtx")


def codec_preferences(kind: str, family: str) -> list[RTCRtpCodecCapability]:
    """Capabilities to pass to ``setCodecPreferences`` to negotiate only ``family``.

    Video gets RTX after it; H.264 is limited to packetization-mode=1,
    constrained baseline (42e0..) before baseline (4200..).
    """
    family = codec_family(family)
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in caps if codec_family(c.mimeType) == family]
    if family == "video/h264":
        chosen = [c for c in chosen if str(c.parameters.get("packetization-mode")) == "1"]
        chosen.sort(key=lambda c: str(c.parameters.get("profile-level-id", ""))[2:4] != "e0")
    if not chosen:
        raise NegotiationError(f"{family} is not supported")
    if kind == "video":
        chosen += [c for c in caps if _is_rtx(c)][:1]
    return chosen


def negotiable(kind: str, family: str, offered: Sequence[RTCRtpCodecParameters]) -> bool:
    """Whether an offer listing ``offered`` codecs can be answered with ``family``.

    Browsers send the same codec list in every offer, and ``find_common_codecs``
    deep-copies each codec it compares: the answer is remembered per list
    (at most ``_NEGOTIABLE_MAX`` lists, the oldest forgotten first).
    """
    key = (kind, family, tuple(map(_codec_key, offered)))
    known = _NEGOTIABLE.get(key)
    if known is None:
        common = find_common_codecs(CODECS[kind], list(offered))
        known = bool(filter_preferred_codecs(common, codec_preferences(kind, family)))
        if len(_NEGOTIABLE) >= _NEGOTIABLE_MAX:
            del _NEGOTIABLE[next(iter(_NEGOTIABLE))]
        _NEGOTIABLE[key] = known
    return known


_NEGOTIABLE: dict[tuple[object, ...], bool] = {}
_NEGOTIABLE_MAX = 256


def _codec_key(codec: RTCRtpCodecParameters) -> tuple[object, ...]:
    """What ``find_common_codecs`` reads of a codec, hashable."""
    return (
        codec.mimeType.lower(), codec.clockRate, codec.channels, codec.payloadType,
        tuple(sorted((str(k), str(v)) for k, v in codec.parameters.items())),
        tuple((fb.type, fb.parameter) for fb in codec.rtcpFeedback),
    )  # fmt: skip


PUBLISHER_CODECS: dict[str, tuple[str, ...]] = {
    "video": ("video/H264", "video/VP8"),
    "audio": ("audio/opus",),
}
"""What a publisher may send, in order of preference (recordings want H.264)."""


def choose_publisher_codec(kind: str, offered: Sequence[RTCRtpCodecParameters]) -> str:
    """The codec family to accept from a publisher offering ``offered``."""
    for family in PUBLISHER_CODECS.get(kind, ()):
        if negotiable(kind, family, offered):
            return family
    names = sorted({c.mimeType for c in offered})
    raise NegotiationError(f"no supported {kind} codec offered (offered: {names})")
