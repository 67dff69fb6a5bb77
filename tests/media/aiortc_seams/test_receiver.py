"""The receiver seams: the bitrate estimator a video receiver builds on first use."""

from __future__ import annotations

from aiortc.rate import RemoteBitrateEstimator

from media.aiortc_seams.receiver import LazyBitrateEstimator
from media.peers import PeerConfig, create_peer_connection


async def test_a_video_receiver_builds_no_estimator_until_a_packet_comes() -> None:
    """A viewer's connection has a video receiver that never receives: it holds no
    8,000-bucket rate window."""
    pc = create_peer_connection(PeerConfig())
    try:
        receiver = pc.addTransceiver("video", direction="sendonly").receiver
        estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator  # type: ignore[attr-defined]
        assert isinstance(estimator, LazyBitrateEstimator)
        assert estimator._estimator is None
    finally:
        await pc.close()


def test_the_lazy_estimator_answers_as_aiortcs() -> None:
    """Fed the same packets, it gives aiortc's estimator's REMB values, built at the first."""
    lazy, plain = LazyBitrateEstimator(), RemoteBitrateEstimator()
    remb = []
    for i in range(3000):
        # 30 fps, 10 packets a frame, abs-send-time in 6.18 fixed point seconds
        now_ms = i * 33 // 10
        packet = {"arrival_time_ms": now_ms + (i % 7), "abs_send_time": (now_ms << 18) // 1000,
                  "payload_size": 1100, "ssrc": 1234}  # fmt: skip
        got = lazy.add(**packet)
        assert got == plain.add(**packet)
        if got is not None:
            remb.append(got)
    assert remb, "the run is long enough for aiortc's estimator to send REMB"
    assert lazy._estimator is not None
