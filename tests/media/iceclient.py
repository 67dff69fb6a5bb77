"""A client whose network changed, for tests: ICE restart on the controlling side of an
aiortc peer (aiortc has no ``restartIce()``).

``moved = await MovedIce.start(pc)`` opens a new UDP socket on loopback with new ICE
credentials, as a phone's browser does after a network switch; ``moved.fragment(mid)``
is the WHIP/WHEP PATCH body (RFC 9725 §4.3.2); ``await moved.finish(answer_fragment)``
runs the checks on the new path (nominating its pair) and moves ``pc``'s ICE
connection onto it: from then on the peer sends and receives only there, its old
socket closed. The DTLS association and everything above it stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from aioice import Connection
from aiortc import RTCPeerConnection
from aiortc.rtcicetransport import candidate_to_aioice

from media.aiortc_seams import ice as ice_seams
from media.sdpfrag import parse_sdpfrag


@dataclass
class MovedIce:
    """The new path of a client (controlling) whose network changed."""

    pc: RTCPeerConnection
    old: Connection
    fresh: Connection

    @classmethod
    async def start(cls, pc: RTCPeerConnection) -> MovedIce:
        """A new ICE agent on a new loopback socket with new credentials (not yet used)."""
        gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
        old = ice_seams.ice_connection(gatherer)
        assert old.ice_controlling, "the offerer (the client) controls ICE"
        fresh = Connection(ice_controlling=True, components=1)
        ice_seams.gather_on(fresh, ["127.0.0.1"])
        await fresh.gather_candidates()
        return cls(pc, old, fresh)

    def fragment(self, mid: str) -> str:
        """The trickle-ice-sdpfrag of the restart: new credentials, new candidates."""
        lines = ["m=video 9 UDP/TLS/RTP/SAVPF 96", f"a=mid:{mid}",
                 f"a=ice-ufrag:{self.fresh.local_username}",
                 f"a=ice-pwd:{self.fresh.local_password}"]  # fmt: skip
        lines += [f"a=candidate:{c.to_sdp()}" for c in self.fresh.local_candidates]
        return "\r\n".join([*lines, "a=end-of-candidates"]) + "\r\n"

    @property
    def port(self) -> int:
        """The new path's local UDP port."""
        return int(self.fresh.local_candidates[0].port)

    async def finish(self, answer: str) -> None:
        """Check and nominate the new path with the server's new credentials and
        candidates (``answer``: the 200's fragment), then put it under ``pc``."""
        frag = parse_sdpfrag(answer)
        assert frag.ufrag is not None and frag.pwd is not None
        self.fresh.remote_username, self.fresh.remote_password = frag.ufrag, frag.pwd
        for item in frag.candidates:
            await self.fresh.add_remote_candidate(candidate_to_aioice(item.candidate))
        await self.fresh.add_remote_candidate(None)
        await self.fresh.connect()
        consent = self.fresh._query_consent_task
        if consent is not None:
            consent.cancel()  # the old connection's own consent checks go on, on the new pair
        protocols = ice_seams.stun_protocols(self.fresh)
        pair = self.fresh._nominated[1]
        old = self.old
        for protocol in protocols:
            protocol.receiver = old  # datagrams (DTLS, SRTP, STUN) to the old connection
        old._local_username = self.fresh.local_username
        old._local_password = self.fresh.local_password
        old.remote_username, old.remote_password = frag.ufrag, frag.pwd
        gone = list(ice_seams.stun_protocols(old))
        ice_seams.stun_protocols(old)[:] = protocols
        old._nominated[1] = pair
        for protocol in gone:
            await protocol.close()
