"""ICE consent (RFC 7675) through the ``check_consent`` seam: two real aiortc peers on
loopback, short intervals. A peer that vanishes is dropped after the expiry; a stalled
event loop (a join storm) does not drop a peer that is there."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCSessionDescription

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
