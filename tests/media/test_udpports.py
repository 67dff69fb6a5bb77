"""Media sockets inside an operator's port range: real sockets on loopback."""

from __future__ import annotations

import socket

import pytest

from media.udpports import PortRange, PortsExhausted
from tests.media.test_forwarder import free_range


def test_binds_round_robin_inside_the_range_and_refuses_when_used_up() -> None:
    lo, hi = free_range(3)
    ports = PortRange(lo, hi)
    socks = [ports.bind("127.0.0.1") for _ in range(3)]
    try:
        assert sorted(s.getsockname()[1] for s in socks) == [lo, lo + 1, hi]
        assert all(s.type == socket.SOCK_DGRAM and not s.getblocking() for s in socks)
        with pytest.raises(PortsExhausted, match=f"{lo}-{hi}"):
            ports.bind("127.0.0.1")
        socks[0].close()  # closing frees its port again ...
        socks[0] = ports.bind("127.0.0.1")
        assert socks[0].getsockname()[1] == lo  # ... and the search wraps around to it
    finally:
        for s in socks:
            s.close()


def test_a_port_taken_by_someone_else_is_skipped() -> None:
    lo, hi = free_range(2)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", lo))
    ports = PortRange(lo, hi)
    try:
        mine = ports.bind("127.0.0.1")
        assert mine.getsockname()[1] == hi and hi in ports and lo - 1 not in ports
        mine.close()
    finally:
        other.close()
