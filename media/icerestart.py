"""ICE restart of a WHIP or WHEP session (RFC 9725 §4.3.2, §4.4): new ICE credentials, same DTLS.

A PATCH whose fragment names a new ``ice-ufrag``/``ice-pwd`` restarts ICE.
WHIP and WHEP never renegotiate anything but ICE, so the restart is done in
place on the session's one ICE connection (max-bundle): new local
credentials, the remote ones of the fragment, its candidates instead of the
old ones (``media.aiortc_seams.ice.restart``; aioice 0.13 has no ICE
restart). The answer is a trickle-ice-sdpfrag with the new local
credentials and the node's candidates (unchanged: the same sockets), and
the session gets a new entity-tag. Media keeps flowing on the old path
while it lives; the DTLS association stays, and so do a publisher's relays
and viewers. Once the client nominates a pair on the new credentials,
everything the session sends follows it: aiortc's RTCP and a WHEP viewer's
lean RTP (``media.forwarder``: ``LeanViewer`` re-routes on the new
nomination and asks for a keyframe).

Refused (``IceRestartRefused``), changing nothing: sessions whose ICE has
not completed yet (nothing to restart; they may still trickle).
"""

from __future__ import annotations

import secrets

from aiortc import sdp as aiortc_sdp

from media.aiortc_seams import ice as ice_seams
from media.sdpfrag import FragmentError, SdpFrag
from media.sessions import PublisherSession, ViewerSession

SESSION_LINES = ("a=ice-lite", "a=ice-options:", "a=group:BUNDLE")
"""Session-level lines of the answer a restart answer repeats (RFC 9725 §4.3.2)."""


class IceRestartRefused(Exception):
    """This session cannot restart ICE (the message says why); it is kept as it was."""


async def restart_ice(session: PublisherSession | ViewerSession, frag: SdpFrag) -> str:
    """Restart ``session``'s ICE with ``frag`` (new remote credentials and candidates);
    returns the answer fragment. Raises ``IceRestartRefused`` or ``FragmentError``
    before changing anything."""
    if session.closed or session.connection_state != "connected":
        raise IceRestartRefused("the session's ICE has not completed: nothing to restart yet")
    if frag.ufrag is None or frag.pwd is None:
        raise FragmentError("an ICE restart names both a=ice-ufrag and a=ice-pwd")
    mids = session.check_fragment(frag, 0)
    transceiver = session.pc.getTransceivers()[0]
    gatherer = transceiver.receiver.transport.transport.iceGatherer
    try:
        ufrag, pwd = ice_seams.restart(gatherer, frag.ufrag, frag.pwd)
    except ValueError as exc:
        raise IceRestartRefused(str(exc)) from None
    session.pc.forget_remote_candidates()
    session.remote_ice = (frag.ufrag, frag.pwd)
    session.ice_tag = secrets.token_hex(8)
    session.trickled = 0
    await session.trickle(frag)
    # The candidates come from the gatherer, not the (announced) description:
    # they name the bound addresses until the node's announce map renames them.
    return session.pc.announced(answer_fragment(str(session.pc.localDescription.sdp), mids[0],
        ufrag, pwd, ["a=candidate:" + aiortc_sdp.candidate_to_sdp(c)
                     for c in gatherer.getLocalCandidates()]))  # fmt: skip


def answer_fragment(answer_sdp: str, mid: str, ufrag: str, pwd: str, candidates: list[str]) -> str:
    """The trickle-ice-sdpfrag answering a restart: the answer's ICE session lines, its
    first m= line and mid, the new credentials, every candidate, end-of-candidates."""
    lines = answer_sdp.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("m="))
    head = [line for line in lines[:first] if line.startswith(SESSION_LINES)]
    body = [lines[first], f"a=mid:{mid}", f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}"]
    return "\r\n".join([*head, *body, *candidates, "a=end-of-candidates"]) + "\r\n"
