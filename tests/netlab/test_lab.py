"""The lab behaves like the networks it stands for, and leaves nothing behind.

Datagrams and connections between namespaces, made with plain sockets that a
thread opened inside each namespace (``Lab.call``): the 1:1 NAT, the home
routers' masquerade and their refusal of unsolicited traffic, the firewall
that lets UDP out only to TURN, the tbf cap, an outage, a network switch.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from pathlib import Path

import pytest

from loadtests.netlab import Lab, PhoneSpec, Router
from loadtests.netlab.lab import close_all_now
from loadtests.netlab.plan import TURN_PORT
from loadtests.netlab.system import run

pytestmark = pytest.mark.timeout(90)
#: How long a datagram may take inside the lab before it counts as dropped.
QUIET_S = 1.0
CAP_KBIT = 800


def udp_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(QUIET_S)
    return sock


def receive(sock: socket.socket) -> tuple[bytes, str] | None:
    """One datagram and its source address, or None if nothing comes within QUIET_S
    (a window in which nothing may arrive, when the test expects a drop)."""
    try:
        data, (address, _) = sock.recvfrom(2048)
    except TimeoutError:
        return None
    return data, address


def send(sock: socket.socket, data: bytes, address: str, port: int) -> int:
    """``sendto``; the errno when the kernel refuses at once (no route, link down)."""
    try:
        sock.sendto(data, (address, port))
    except OSError as exc:
        return exc.errno or -1
    return 0


async def test_nat_masquerade_and_firewall(lab_machine: None, tmp_path: Path) -> None:
    """Phones reach the node only at its public address and it sees their routers'
    addresses; nothing unsolicited reaches a phone; the firewalled phone's UDP passes
    only to the TURN port, its TCP everywhere."""
    phones = [PhoneSpec("home"), PhoneSpec("fw", Router.UDP_ONLY_TURN)]
    async with Lab.open(tmp_path, phones, turn=True) as lab:
        home, fw, node, turn = lab.phones["home"], lab.phones["fw"], lab.node, lab.turn
        assert turn is not None
        at_node = await lab.call(node, lambda: udp_socket(5000))
        at_turn = await lab.call(turn, lambda: udp_socket(TURN_PORT))
        from_home = await lab.call(home, udp_socket)
        from_fw = await lab.call(fw, udp_socket)
        sockets = [at_node, at_turn, from_home, from_fw]
        try:
            assert send(from_home, b"hi", node.public, 5000) == 0
            got = await asyncio.to_thread(receive, at_node)
            assert got == (b"hi", home.public), "the node sees the home router's address"
            _, port = from_home.getsockname()
            at_node.sendto(b"back", (home.public, port))
            assert await asyncio.to_thread(receive, from_home) == (b"back", node.public)

            send(from_home, b"private", node.address, 5000)  # the home router has no route
            assert await asyncio.to_thread(receive, at_node) is None
            # Unsolicited: a port the home router never mapped.
            at_node.sendto(b"knock", (home.public, 40999))
            assert await asyncio.to_thread(receive, from_home) is None

            send(from_fw, b"udp", node.public, 5000)
            assert await asyncio.to_thread(receive, at_node) is None, "firewall drops UDP"
            send(from_fw, b"turn", turn.address, TURN_PORT)
            assert await asyncio.to_thread(receive, at_turn) == (b"turn", fw.public)
            listener = await lab.call(node, lambda: socket.create_server(("0.0.0.0", 5001)))
            sockets.append(listener)
            client = await lab.call(fw, lambda: socket.create_connection((node.public, 5001), 2))
            sockets.append(client)
            assert client.getpeername() == (node.public, 5001)
        finally:
            for sock in sockets:
                sock.close()


async def test_bandwidth_cap_outage_and_switch(lab_machine: None, tmp_path: Path) -> None:
    """tbf holds a phone's download near its rate; a link down refuses sends until it
    is up again; a network switch gives the phone a new address on its LAN."""
    async with Lab.open(tmp_path, [PhoneSpec("slow", rate_kbit=CAP_KBIT)]) as lab:
        slow, node = lab.phones["slow"], lab.node
        size = CAP_KBIT * 1000 // 8 * 2  # two seconds at the cap
        listener = await lab.call(node, lambda: socket.create_server(("0.0.0.0", 5002)))

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"x" * size)

        def download() -> float:
            with socket.create_connection((node.public, 5002), 5) as sock:
                started, got = time.monotonic(), 0
                while chunk := sock.recv(65536):
                    got += len(chunk)
                assert got == size
                return time.monotonic() - started

        try:
            _, elapsed = await asyncio.gather(lab.call(node, serve), lab.call(slow, download))
        finally:
            listener.close()
        kbit = size * 8 / 1000 / elapsed
        assert 0.6 * CAP_KBIT < kbit < 1.3 * CAP_KBIT, f"{kbit:.0f} kbit/s, cap {CAP_KBIT}"

        sock = await lab.call(slow, udp_socket)
        try:
            await lab.set_link(slow, up=False)
            assert send(sock, b"x", node.public, 5000) in (errno.ENETUNREACH, errno.ENETDOWN)
            await lab.set_link(slow, up=True)
            assert send(sock, b"x", node.public, 5000) == 0
        finally:
            sock.close()
        old = slow.address
        new = await lab.switch_address(slow)
        shown = await run("ip", "-n", slow.ns, "-4", "-o", "addr", "show", "dev", "eth0")
        assert new != old and f"inet {new}/" in shown and f"inet {old}/" not in shown


async def test_teardown_leaves_nothing_even_on_failure(lab_machine: None, tmp_path: Path) -> None:
    """A test that fails inside the lab still leaves no namespace and no process."""
    names: list[str] = []
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="the test failed"):
        async with Lab.open(tmp_path, [PhoneSpec("home")]) as lab:
            names = list(lab.namespaces)
            proc = await lab.spawn(lab.phones["home"], ["sleep", "300"], log="sleep")
            # A child outside our process group, left in the namespace, is found by PID too.
            await lab.spawn(lab.node, ["sh", "-c", "setsid sleep 300 & wait"], log="orphan")
            pids.append(proc.pid)
            raise RuntimeError("the test failed")
    listed = await run("ip", "netns", "list")
    assert names and not any(name in listed for name in names)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_lab_whose_test_was_aborted_is_torn_down_without_a_loop(
    lab_machine: None, tmp_path: Path
) -> None:
    """A lab entered but never exited (the test's loop aborted by its timeout) is torn
    down by close_all_now(), blocking: namespaces and processes gone."""
    opened = Lab.open(tmp_path, [PhoneSpec("home")])
    lab = await opened.__aenter__()
    proc = await lab.spawn(lab.phones["home"], ["sleep", "300"], log="sleep")
    names = list(lab.namespaces)
    assert close_all_now() == 1
    listed = await run("ip", "netns", "list")
    assert not any(name in listed for name in names)
    assert await proc.wait() == -9
    await opened.__aexit__(None, None, None)  # closing again is harmless
