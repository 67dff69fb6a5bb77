"""ICE consent (RFC 7675) through the ``check_consent`` seam: two real aiortc peers on
loopback, short intervals. A peer that vanishes is dropped after the expiry; a stalled
event loop (a join storm) does not drop a peer that is there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioice import stun
from aiortc import RTCSessionDescription

from media.aiortc_seams import ice as ice_seams
from media.peers import MediaPeerConnection, PeerConfig, create_peer_connection
from tests.media.sources import blackhole
from tests.waiting import eventually

FAST = PeerConfig(consent_interval_s=0.2, consent_expiry_s=1.0)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[MediaPeerConnection, MediaPeerConnection]]:
    """An offerer and an answerer connected over loopback (a data channel: no media)."""
    offerer, answerer = create_peer_connection(FAST), create_peer_connection(FAST)
    offerer.createDataChannel("x")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(
        RTCSessionDescription(sdp=answerer.localDescription.sdp, type="answer")
    )
    await eventually(
        lambda: offerer.connectionState == answerer.connectionState == "connected", within=10
    )
    yield offerer, answerer
    await offerer.close()
    await answerer.close()


async def test_a_vanished_peer_is_dropped_after_the_expiry(
    pair: tuple[MediaPeerConnection, MediaPeerConnection],
) -> None:
    """The answerer's connection ends (failed, or closed once DTLS follows) between the
    expiry and the expiry plus one check interval."""
    offerer, answerer = pair
    blackhole(offerer)
    start = time.monotonic()
    await eventually(lambda: answerer.connectionState in ("failed", "closed"), within=5, step=0.02)
    assert 0.8 <= time.monotonic() - start < 1.0 + 1.2 * 0.2 + 0.3


async def test_a_stalled_loop_does_not_expire_a_present_peer(
    pair: tuple[MediaPeerConnection, MediaPeerConnection],
) -> None:
    """Blocking the loop for three expiries (answers are read late, checks sent late)
    does not fail the connection: consent needs silence *and* unanswered checks."""
    offerer, answerer = pair
    time.sleep(3.0)  # noqa: ASYNC251 - the stall itself: nothing may run meanwhile
    deadline = asyncio.get_running_loop().time() + 2.0
    while asyncio.get_running_loop().time() < deadline:
        assert answerer.connectionState == offerer.connectionState == "connected"
        await asyncio.sleep(0.05)  # pace: watch for a failure for two expiries


def _count_consent_requests(pc: MediaPeerConnection) -> list[int]:
    """A counter of the STUN Binding requests ``pc`` sends from now on (the sockets'
    own sends, counted on their way out)."""
    sent = [0]
    for gatherer in pc._ice_gatherers():
        for protocol in ice_seams.stun_protocols(ice_seams.ice_connection(gatherer)):
            send = protocol.send_stun

            def counting(message: stun.Message, addr: tuple[str, int], send: Any = send) -> None:
                if message.message_class == stun.Class.REQUEST:
                    sent[0] += 1
                send(message, addr)

            protocol.send_stun = counting  # type: ignore[method-assign]
    return sent


async def test_the_peers_own_checks_renew_consent() -> None:
    """A peer that checks often (here every 0.2 s) keeps the other side's consent fresh:
    that side, checking every 0.5 s, sends (almost) no checks of its own; and once the
    peer vanishes, it checks again and drops it after the expiry."""
    offerer = create_peer_connection(FAST)
    answerer = create_peer_connection(PeerConfig(consent_interval_s=0.5, consent_expiry_s=1.5))
    try:
        offerer.createDataChannel("x")
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await eventually(
            lambda: offerer.connectionState == answerer.connectionState == "connected", within=10
        )
        by_answerer, by_offerer = (
            _count_consent_requests(answerer),
            _count_consent_requests(offerer),
        )
        await eventually(lambda: by_offerer[0] >= 10, within=5)  # two seconds of checks
        assert by_answerer[0] <= 1  # four rounds: each followed a check of the offerer's
        blackhole(offerer)
        start = time.monotonic()
        await eventually(lambda: answerer.connectionState in ("failed", "closed"), within=5)
        assert 1.2 <= time.monotonic() - start < 1.5 + 1.2 * 0.5 + 0.5
        assert by_answerer[0] >= 2  # it checked again once the offerer went quiet
    finally:
        await offerer.close()
        await answerer.close()


async def test_a_check_from_off_the_path_does_not_renew_consent(
    pair: tuple[MediaPeerConnection, MediaPeerConnection],
) -> None:
    """An authenticated check from an address the media does not take (the network a
    phone left, or someone holding the credentials) does not keep a vanished peer's
    session: the path in use must answer."""
    offerer, answerer = pair
    connection = ice_seams.ice_connection(answerer._ice_gatherers()[0])
    port = ice_seams.local_ports(connection)[0]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    blackhole(offerer)
    start = time.monotonic()
    try:
        while answerer.connectionState not in ("failed", "closed"):
            assert time.monotonic() - start < 3.0, "consent never expired"
            request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
            request.attributes["USERNAME"] = (
                f"{connection.local_username}:{connection.remote_username}"
            )
            request.attributes["PRIORITY"] = 1
            request.attributes["ICE-CONTROLLING"] = 1
            request.add_message_integrity(connection.local_password.encode("utf8"))
            request.add_fingerprint()
            transport.sendto(bytes(request), ("127.0.0.1", port))
            await asyncio.sleep(0.05)  # pace: a check every 50 ms from off the path
    finally:
        transport.close()
    assert time.monotonic() - start >= 0.8
