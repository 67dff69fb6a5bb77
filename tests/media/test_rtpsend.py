"""The lean forwarder's per-viewer loop: the C extension and the Python fallback, one test class.

Real kernel sockets on loopback, real libsrtp (pylibsrtp's): packets are
protected with a tx session and checked with a receiver session of the same
key, as a browser would.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pylibsrtp
import pytest

from media import rtpsend, rtpslow
from media.aiortc_seams import srtp as srtp_seams
from media.forwarder import extension_block

try:
    from media import _rtpfast  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the extension is built by `pip install -e .`
    _rtpfast = None

# Without the extension the C tests fail (a broken install ships a loop ~4x
# slower), unless LIVECORE_PURE_PYTHON=1 says the fallback is what is wanted.
C_MISSING = pytest.mark.skipif(
    _rtpfast is None and rtpsend.pure_python_wanted(),
    reason="LIVECORE_PURE_PYTHON=1: the C loop is not wanted",
)
IMPLEMENTATIONS = [
    pytest.param(rtpslow, id="python"),
    pytest.param(_rtpfast, id="c", marks=C_MISSING),
]
KEY = bytes(range(30))
PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80


def sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    tx = pylibsrtp.Policy(
        key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=PROFILE
    )
    tx.allow_repeat_tx = True
    rx = pylibsrtp.Policy(
        key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=PROFILE
    )
    rx.window_size = 1024
    return pylibsrtp.Session(tx), pylibsrtp.Session(rx)


@pytest.fixture
def udp() -> Iterator[tuple[socket.socket, socket.socket]]:
    send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send.bind(("127.0.0.1", 0))
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv.bind(("127.0.0.1", 0))
    recv.settimeout(1.0)
    yield send, recv
    send.close()
    recv.close()


def parse(packet: bytes) -> dict[str, Any]:
    first, second, seq, ts, ssrc = struct.unpack("!BBHII", packet[:12])
    out: dict[str, Any] = {"x": bool(first & 0x10), "m": bool(second & 0x80), "pt": second & 0x7F}
    out |= {"seq": seq, "ts": ts, "ssrc": ssrc}
    at = 12
    if out["x"]:
        words = struct.unpack("!H", packet[14:16])[0]
        out["ext"] = packet[12 : 16 + 4 * words]
        at = 16 + 4 * words
    end = len(packet) - (packet[-1] if first & 0x20 else 0)  # RTP padding (RFC 3550 §5.1)
    out["padded"] = bool(first & 0x20)
    out["payload"] = packet[at:end]
    return out


class TestRtpSend:
    """One behaviour, two implementations (``media._rtpfast`` and ``media.rtpslow``)."""

    @pytest.fixture(params=IMPLEMENTATIONS)
    def impl(self, request: pytest.FixtureRequest) -> ModuleType:
        module: ModuleType = request.param
        return module

    def viewer(
        self, impl: ModuleType, sock: socket.socket, addr: Any, tx: pylibsrtp.Session, **kw: Any
    ) -> Any:
        ctx, protect = srtp_seams.srtp_pointers(tx)
        ext, at = extension_block("1", 1, 3)
        args = {"ssrc": 0x11223344, "pt": 102, "ts_origin": 0xFFFFFF00, "seq": 65534,
                "ext": ext, "abs_offset": at, "rtx_ssrc": 0x55667788, "rtx_pt": 103,
                "rtx_seq": 7} | kw  # fmt: skip
        return impl.Viewer(sock.fileno(), addr, ctx, protect, tx, **args)

    def receive(
        self, recv: socket.socket, rx: pylibsrtp.Session, count: int
    ) -> list[dict[str, Any]]:
        return [parse(rx.unprotect(recv.recv(2048))) for _ in range(count)]

    def test_header_bytes_and_srtp_round_trip(
        self, impl: ModuleType, udp: tuple[socket.socket, socket.socket]
    ) -> None:
        send, recv = udp
        tx, rx = sessions()
        v = self.viewer(impl, send, recv.getsockname(), tx)
        payloads = [b"a" * 1200, b"b" * 1200, b"c" * 10]
        assert impl.send_frame([v], payloads, 0x200, 40, True, 0xABCDEF, 12345) == 0
        got = self.receive(recv, rx, 3)
        assert [p["seq"] for p in got] == [65534, 65535, 0]  # wraps
        assert {p["ts"] for p in got} == {(0xFFFFFF00 + 0x200) & 0xFFFFFFFF}
        assert [p["m"] for p in got] == [False, False, True]
        assert {p["pt"] for p in got} == {102} and {p["ssrc"] for p in got} == {0x11223344}
        assert [p["payload"] for p in got] == payloads
        # mid "1" with id 1, abs-send-time id 3, padded: exactly aiortc's bytes
        assert got[0]["ext"] == b"\xbe\xde\x00\x02\x10\x31\x32\xab\xcd\xef\x00\x00"
        assert (v.packets, v.octets, v.last_ntp) == (3, 2410, 12345)
        assert v.last_ts == (0xFFFFFF00 + 0x200) & 0xFFFFFFFF
        assert [v.lookup(s) for s in (65534, 65535, 0, 1)] == [40, 41, 42, -1]
        v.close()
        assert v.closed

    def test_no_extensions_negotiated(
        self, impl: ModuleType, udp: tuple[socket.socket, socket.socket]
    ) -> None:
        send, recv = udp
        tx, rx = sessions()
        v = self.viewer(impl, send, recv.getsockname(), tx, ext=b"", abs_offset=-1, seq=5)
        impl.send_frame([v], [b"opus"], 960, 0, True, 1, 2)
        (p,) = self.receive(recv, rx, 1)
        assert not p["x"] and p["payload"] == b"opus" and p["m"] and p["seq"] == 5

    def test_waits_for_a_keyframe_and_numbers_continue(
        self, impl: ModuleType, udp: tuple[socket.socket, socket.socket]
    ) -> None:
        send, recv = udp
        tx, rx = sessions()
        v = self.viewer(impl, send, recv.getsockname(), tx, seq=100)
        assert v.waiting
        impl.send_frame([v], [b"delta"], 3000, 0, False, 0, 0)  # skipped: no number used
        assert v.skipped == 1 and v.packets == 0
        impl.send_frame([v], [b"key1", b"key2"], 6000, 1, True, 0, 0)
        impl.send_frame([v], [b"delta"], 9000, 3, False, 0, 0)
        got = self.receive(recv, rx, 3)
        assert [p["seq"] for p in got] == [100, 101, 102]
        assert [p["ts"] - 0xFFFFFF00 & 0xFFFFFFFF for p in got] == [6000, 6000, 9000]

    def test_reroute_moves_the_stream_and_keeps_its_numbering(
        self, impl: ModuleType, udp: tuple[socket.socket, socket.socket]
    ) -> None:
        """After ``reroute`` (an ICE restart's new pair) packets leave from the new socket
        to the new address, numbered on, resendable; the old socket copy is closed."""
        send, recv = udp
        tx, rx = sessions()
        v = self.viewer(impl, send, recv.getsockname(), tx, seq=10)
        impl.send_frame([v], [b"key"], 3000, 0, True, 0, 0)
        assert self.receive(recv, rx, 1)[0]["seq"] == 10
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as send2,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as recv2,
        ):
            send2.bind(("127.0.0.1", 0))
            recv2.bind(("127.0.0.1", 0))
            recv2.settimeout(1.0)
            with pytest.raises(ValueError, match="IP address"):
                v.reroute(send2.fileno(), ("phone.local", 9))  # refused: the route stays
            v.reroute(send2.fileno(), recv2.getsockname())
            send2.close()  # the viewer holds its own copy
            impl.send_frame([v], [b"delta"], 6000, 1, False, 0, 0)
            got = parse(rx.unprotect(recv2.recvfrom(2048)[0]))
            assert (got["seq"], got["payload"]) == (11, b"delta")
            assert v.lookup(10) == 0 and v.lookup(11) == 1
            assert impl.resend(v, 10, b"key", 3000, True, 0)
            rtx = parse(rx.unprotect(recv2.recv(2048)))
            assert rtx["ssrc"] == 0x55667788 and rtx["payload"][2:] == b"key"
        recv.settimeout(0.05)
        with pytest.raises(TimeoutError):
            recv.recv(2048)  # nothing more on the old route
        v.close()
        v.reroute(send.fileno(), recv.getsockname())  # a closed viewer stays closed
        assert v.closed

    def test_refusing_socket_skips_to_the_next_keyframe(self, impl: ModuleType) -> None:
        """A peer that reads nothing fills a datagram socketpair: the kernel says EAGAIN."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        send, recv = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        recv.settimeout(1.0)
        tx, _ = sessions()
        tx_ok, rx_ok = sessions()
        slow = self.viewer(impl, mine, None, tx, seq=0)
        fine = self.viewer(impl, send, None, tx_ok, seq=0, ssrc=9)
        frames = 0
        refused = 0
        for n in range(200):
            refused += impl.send_frame(
                [slow, fine], [b"x" * 1000] * 3, n * 3000, 3 * n, n == 0, 0, 0
            )
            frames += 1
            for _ in range(3):
                rx_ok.unprotect(recv.recv(2048))  # the other viewer gets every packet
            if refused:
                break
        assert refused == 1 and slow.refused == 1 and slow.waiting
        assert fine.packets == 3 * frames and fine.refused == 0
        numbered = slow.seq
        assert numbered == 3 * frames  # the refused frame was numbered in full (NACK-able)
        impl.send_frame([slow], [b"d"], 10**6, 999, False, 0, 0)
        assert slow.seq == numbered and slow.skipped == 1  # non-key frames: nothing, no numbers
        while True:  # the viewer drains its socket ...
            theirs.setblocking(False)
            try:
                theirs.recv(4096)
            except BlockingIOError:
                break
        impl.send_frame([slow], [b"k"], 2 * 10**6, 1000, True, 0, 0)  # ... and resumes on a key
        assert not slow.waiting and slow.seq == numbered + 1
        for s in (mine, theirs, send, recv):
            s.close()

    def test_resend_as_rtx_and_plain(
        self, impl: ModuleType, udp: tuple[socket.socket, socket.socket]
    ) -> None:
        send, recv = udp
        tx, rx = sessions()
        v = self.viewer(impl, send, recv.getsockname(), tx, seq=10)
        impl.send_frame([v], [b"p0", b"p1"], 3000, 0, True, 0, 0)
        self.receive(recv, rx, 2)
        assert impl.resend(v, 11, b"p1", 3000, True, 5)
        (r,) = self.receive(recv, rx, 1)
        assert (r["pt"], r["ssrc"], r["seq"], r["m"]) == (103, 0x55667788, 7, True)
        assert r["payload"] == b"\x00\x0bp1"  # RFC 4588: original sequence number first
        plain = self.viewer(impl, send, recv.getsockname(), tx, seq=10, rtx_pt=-1, ssrc=77)
        impl.send_frame([plain], [b"q0"], 3000, 0, True, 0, 0)
        recv.recv(2048)  # "lost": the receiver never unprotects it
        assert impl.resend(plain, 10, b"q0", 3000, True, 5)
        (again,) = self.receive(recv, rx, 1)  # the same number again (allow_repeat_tx)
        assert (again["pt"], again["ssrc"], again["seq"]) == (102, 77, 10)
        assert v.resent == 1 and plain.resent == 1

    def test_bad_arguments_are_refused(
        self, impl: ModuleType, udp: tuple[socket.socket, socket.socket]
    ) -> None:
        send, recv = udp
        tx, _ = sessions()
        with pytest.raises(ValueError):
            self.viewer(impl, send, recv.getsockname(), tx, ext=b"\xbe\xde\x00")
        with pytest.raises(ValueError):
            self.viewer(impl, send, recv.getsockname(), tx, pt=200)
        v = self.viewer(impl, send, recv.getsockname(), tx)
        with pytest.raises(ValueError):
            impl.send_frame([v], [b"x" * 1400], 0, 0, True, 0, 0)
        with pytest.raises(TypeError):
            impl.send_frame([object()], [b"x"], 0, 0, True, 0, 0)
        v.close()
        assert impl.send_frame([v], [b"x"], 0, 0, True, 0, 0) == 0  # closed: sends nothing


@C_MISSING
def test_c_path_sends_runs_of_equal_packets_with_gso(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    """FU-A fragments differing by a byte are padded to one size and leave as one GSO send."""
    send, recv = udp
    tx, rx = sessions()
    ctx, protect = srtp_seams.srtp_pointers(tx)
    ext, at = extension_block("0", 1, 3)
    sizes = [30, 1200, 1200, 1199, 1199, 700]  # STAP-A, four fragments, a short last one
    payloads = [bytes([i]) * n for i, n in enumerate(sizes)]
    for gso in (True, False):
        before = _rtpfast.set_gso(gso)
        try:
            first = 100 + 6 * (not gso)
            v = _rtpfast.Viewer(send.fileno(), recv.getsockname(), ctx, protect, tx, 1, 96, 0,
                                first, ext, at, 2, 97, 0)  # fmt: skip
            _rtpfast.send_frame([v], payloads, 3000, 0, True, 0, 0)
            raw = [recv.recv(2048) for _ in sizes]
        finally:
            _rtpfast.set_gso(before)
        got = [parse(rx.unprotect(r)) for r in raw]
        assert [p["payload"] for p in got] == payloads  # padding stripped: the same bytes
        assert [p["seq"] for p in got] == list(range(first, first + 6))
        assert [p["padded"] for p in got] == ([False, False, False, True, True, False] if gso
                                              else [False] * 6)  # fmt: skip
        if gso:
            assert len({len(r) for r in raw[1:5]}) == 1  # one segment size
        assert v.octets == sum(sizes)  # padding is not counted


@C_MISSING
def test_the_c_loop_is_built() -> None:
    """The extension imports and is the loop in use: a failed compile fails the suite."""
    assert _rtpfast is not None, (
        "media._rtpfast is not built (set LIVECORE_PURE_PYTHON=1 to accept)"
    )
    assert rtpsend.IMPLEMENTATION == "c"


def test_the_fallback_can_be_forced() -> None:
    """LIVECORE_PURE_PYTHON=1 picks the pure-Python loop, as on a machine without a compiler."""
    import os
    import subprocess
    import sys

    code = "import media.rtpsend as r; print(r.IMPLEMENTATION, r.Viewer.__module__)"
    env = {**os.environ, "LIVECORE_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["python", "media.rtpslow"], out.stderr
