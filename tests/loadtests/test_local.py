"""The ports the tests and the load tests' deployments bind their nodes on."""

from __future__ import annotations

import socket

import pytest

from loadtests import local


def test_ports_come_from_the_workers_slice_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An xdist worker gets ports of its own slice, each once in turn, never from where the
    kernel picks outgoing connections' ports; one held by another socket is passed over."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    monkeypatch.setattr(local, "_next_port", [])
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    first = local.free_port()
    start = local.PORT_BASE + 3 * local.PORT_SLICE
    assert start <= first < start + local.PORT_SLICE < low
    with socket.socket() as held:
        taken = start + (first - start + 1) % local.PORT_SLICE
        held.bind(("127.0.0.1", taken))
        second = local.free_port()
    assert second != taken and start <= second < start + local.PORT_SLICE
    assert second != first


def test_consecutive_ports_are_kept_from_the_next_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """``free_ports(n)`` gives n free ports in a row; later ports come after them (a
    node with workers binds first + i: a node started next must not get one of those)."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    monkeypatch.setattr(local, "_next_port", [])
    first = local.free_ports(3)
    later = [local.free_port() for _ in range(5)]
    assert not set(later) & {first, first + 1, first + 2}
    start = local.PORT_BASE + 5 * local.PORT_SLICE
    assert all(start <= port < start + local.PORT_SLICE for port in [first + 2, *later])
