"""The lean forwarder's per-viewer loop in pure Python: the fallback of ``media._rtpfast``.

Same interface and behaviour as the C extension (``media/_rtpfast.c``);
``media.rtpsend`` picks the extension when it is built and this module
otherwise, and ``tests/media/test_rtpsend.py`` runs one test class against
both. It protects with the viewer's pylibsrtp ``Session`` (the ``keepalive``
argument) and sends one ``sendto`` per packet (no UDP GSO, so no RTP
padding either): correct, but several times slower than the extension.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from typing import Any

import pylibsrtp

RING = 512
"""Per-viewer ring: sequence number → shared history index (divides 2^16)."""
MAX_PACKET = 1500
MAX_EXT = 64
PAD_MAX = 32
"""The C extension may pad packets by up to this much (for UDP GSO); same limits here."""
_HEADER = struct.Struct("!BBHII")
_REFUSED = (BlockingIOError, InterruptedError)


class Viewer:
    """One viewer's RTP state for one track: numbering, origin, SRTP, socket.

    ``fd`` is duplicated (the copy stays valid whatever aioice does with its
    socket, until ``close()``); ``addr`` is the viewer's ``(host, port)``,
    or None for a connected socket.
    ``srtp_ptr``/``protect_ptr`` are only used by the C extension;
    ``keepalive`` is the viewer's tx pylibsrtp ``Session``. ``ext`` is the
    one-byte header extension block (``0xBEDE``, length, elements, padding)
    sent with every packet, ``abs_offset`` where in it the three
    abs-send-time bytes go (-1: none). ``rtx_pt`` -1: no RTX, retransmit
    with the original sequence number. A new viewer ``waiting`` for a
    keyframe sends nothing until one.
    """

    def __init__(
        self,
        fd: int,
        addr: tuple[Any, ...] | None,
        srtp_ptr: int,
        protect_ptr: int,
        keepalive: Any,
        ssrc: int,
        pt: int,
        ts_origin: int,
        seq: int,
        ext: bytes,
        abs_offset: int,
        rtx_ssrc: int,
        rtx_pt: int,
        rtx_seq: int,
    ) -> None:
        if len(ext) > MAX_EXT or len(ext) % 4 or (abs_offset >= len(ext) - 2 and abs_offset >= 0):
            raise ValueError("bad header extension block")
        if not 0 <= pt <= 127 or rtx_pt > 127 or not srtp_ptr or not protect_ptr:
            raise ValueError("bad payload type or SRTP pointers")
        if not isinstance(keepalive, pylibsrtp.Session):
            raise TypeError("keepalive must be the viewer's pylibsrtp.Session")
        sock = socket.socket(fileno=os.dup(fd))
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._addr = None if addr is None else (addr[0], int(addr[1]))
        self._session: pylibsrtp.Session | None = keepalive
        self.ssrc, self.pt, self.ts_origin = ssrc & 0xFFFFFFFF, pt, ts_origin & 0xFFFFFFFF
        self.seq = seq & 0xFFFF
        self.rtx_ssrc, self.rtx_pt, self.rtx_seq = rtx_ssrc & 0xFFFFFFFF, rtx_pt, rtx_seq & 0xFFFF
        self._ext = bytes(ext)
        self._abs = abs_offset
        self.packets = self.octets = self.refused = self.errors = 0
        self.skipped = self.resent = 0
        self.last_ts = 0
        self.last_ntp = 0
        self.waiting = 1
        self._ring_idx = [0] * RING
        self._ring_seq = [0] * RING

    @property
    def closed(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._session = None

    def reroute(self, fd: int, addr: tuple[Any, ...] | None) -> None:
        """Send on a copy of ``fd`` to ``addr`` from now on (an ICE restart, or the peer
        nominated another pair): numbering, SRTP and the ring stay. A closed viewer
        stays closed."""
        target = None if addr is None else _ip_address(addr)
        if self._sock is None:
            return
        sock = socket.socket(fileno=os.dup(fd))
        sock.setblocking(False)
        self._sock.close()
        self._sock, self._addr = sock, target

    def lookup(self, seq: int) -> int:
        """History index of the packet sent with sequence number ``seq``, or -1."""
        if not 0 <= seq <= 0xFFFF:
            return -1
        slot = seq & (RING - 1)
        return self._ring_idx[slot] if self._ring_seq[slot] == seq + 1 else -1

    def _header(self, marker: bool, pt: int, seq: int, ts: int, ssrc: int, abs_time: int) -> bytes:
        ext = self._ext
        first = 0x90 if ext else 0x80
        head = _HEADER.pack(first, (0x80 if marker else 0) | pt, seq, ts, ssrc)
        if not ext:
            return head
        if self._abs >= 0:
            at = self._abs
            value = (abs_time & 0xFFFFFF).to_bytes(3, "big")
            ext = ext[:at] + value + ext[at + 3 :]
        return head + ext


def _ip_address(addr: tuple[Any, ...]) -> tuple[str, int]:
    """``(host, port)`` as the C extension accepts it: a literal IPv4/IPv6 address."""
    host, port = str(addr[0]), int(addr[1])
    if not 0 <= port <= 65535:
        raise ValueError("port out of range")
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return host, port
    raise ValueError(f"not an IP address: {host}")


def _send(v: Viewer, packets: list[bytes]) -> int:
    """Send ``packets``: how many left, -1 if the socket refused at once, -2 on error."""
    sock, done = v._sock, 0  # noqa: SLF001 - the module's own class
    assert sock is not None
    addr = v._addr  # noqa: SLF001
    for data in packets:
        try:
            if addr is None:
                sock.send(data)
            else:
                sock.sendto(data, addr)
        except _REFUSED:
            return done if done else -1
        except OSError:
            return -2
        done += 1
    return done


def send_frame(
    viewers: Sequence[Viewer],
    payloads: Sequence[bytes],
    timestamp: int,
    first_index: int,
    keyframe: bool,
    abs_send_time: int,
    ntp: int,
) -> int:
    """Send one frame's payloads to every viewer; returns how many viewers refused.

    A viewer waiting for a keyframe skips a non-key frame (no sequence number
    used); one whose socket refuses numbers the rest of the frame (NACK can
    repair it), sends none of it and waits for the next keyframe.
    """
    for p in payloads:
        if not isinstance(p, bytes) or len(p) > MAX_PACKET - 12 - MAX_EXT - PAD_MAX:
            raise ValueError("payloads must be bytes of at most 1392 bytes")
    for v in viewers:
        if not isinstance(v, Viewer):
            raise TypeError("viewers must be media.rtpslow.Viewer")
    refused = 0
    count = len(payloads)
    for v in viewers:
        session = v._session  # noqa: SLF001
        if session is None or not count:
            continue
        if v.waiting:
            if not keyframe:
                v.skipped += 1
                continue
            v.waiting = 0
        ts = (v.ts_origin + timestamp) & 0xFFFFFFFF
        packets: list[bytes] = []
        sizes: list[int] = []
        ring_idx, ring_seq = v._ring_idx, v._ring_seq  # noqa: SLF001
        for i, payload in enumerate(payloads):
            seq = v.seq
            v.seq = (seq + 1) & 0xFFFF
            slot = seq & (RING - 1)
            ring_idx[slot], ring_seq[slot] = first_index + i, seq + 1
            head = v._header(i == count - 1, v.pt, seq, ts, v.ssrc, abs_send_time)  # noqa: SLF001
            try:
                packets.append(session.protect(head + payload))
            except pylibsrtp.Error:
                v.errors += 1
                continue
            sizes.append(len(payload))
        sent = _send(v, packets) if packets else 0
        if sent > 0:
            v.packets += sent
            v.octets += sum(sizes[:sent])
            v.last_ts, v.last_ntp = ts, ntp
        if sent == -2:
            v.errors += 1
        elif sent < len(packets):
            v.refused += 1
            v.waiting = 1
            refused += 1
    return refused


def resend(
    v: Viewer, seq: int, payload: bytes, timestamp: int, marker: bool, abs_send_time: int
) -> bool:
    """Retransmit the packet ``seq`` (RTX when negotiated, RFC 4588); True if sent."""
    if len(payload) > MAX_PACKET - 14 - MAX_EXT:
        raise ValueError("payload too long")
    session, sock = v._session, v._sock  # noqa: SLF001
    if session is None or sock is None:
        return False
    ts = (v.ts_origin + timestamp) & 0xFFFFFFFF
    if v.rtx_pt >= 0:
        rtx_seq = v.rtx_seq
        v.rtx_seq = (rtx_seq + 1) & 0xFFFF
        head = v._header(marker, v.rtx_pt, rtx_seq, ts, v.rtx_ssrc, abs_send_time)  # noqa: SLF001
        data = head + (seq & 0xFFFF).to_bytes(2, "big") + payload
    else:
        data = v._header(marker, v.pt, seq, ts, v.ssrc, abs_send_time) + payload  # noqa: SLF001
    try:
        if v._addr is None:  # noqa: SLF001
            sock.send(session.protect(data))
        else:
            sock.sendto(session.protect(data), v._addr)  # noqa: SLF001
    except _REFUSED:
        v.refused += 1
        return False
    except (OSError, pylibsrtp.Error):
        v.errors += 1
        return False
    v.resent += 1
    return True
