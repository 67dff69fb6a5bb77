"""loadtests.coturn: the coturn the TURN tests and the network lab start."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadtests.coturn import config_text, coturn_available, start_coturn, stun_answers
from tests.helpers import missing

pytestmark = pytest.mark.skipif(not coturn_available(), reason="turnserver not installed")


def test_config_relays_to_allowed_peers_only(tmp_path: Path) -> None:
    """Every peer is denied but the allowed ones; loopback is allowed only when listed."""
    lab = config_text("203.0.113.3", 3478, "s" * 32, tmp_path, ("203.0.113.10",))
    lines = lab.splitlines()
    assert "use-auth-secret" in lines and "no-cli" in lines and "no-tls" in lines
    assert "denied-peer-ip=0.0.0.0-255.255.255.255" in lines
    assert "allowed-peer-ip=203.0.113.10" in lines and "allow-loopback-peers" not in lines
    assert "listening-ip=203.0.113.3" in lines and "relay-ip=203.0.113.3" in lines
    loop = config_text("127.0.0.1", 3478, "s" * 32, tmp_path, ("127.0.0.1",)).splitlines()
    assert "allow-loopback-peers" in loop


def test_start_answer_stop(tmp_path: Path) -> None:
    """Started on loopback it answers STUN on UDP and TCP; the secret is in 0600 files and
    not on its command line; stop() ends that PID."""
    relay = start_coturn("127.0.0.1", workdir=tmp_path)
    try:
        assert stun_answers("127.0.0.1", relay.port)
        assert relay.secret not in " ".join(psutil.Process(relay.process.pid).cmdline())
        for path in (relay.secret_file, tmp_path / "turnserver.conf"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert relay.secret_file.read_text().strip() == relay.secret
    finally:
        relay.stop()
    assert not psutil.pid_exists(relay.process.pid)
    assert not stun_answers("127.0.0.1", relay.port, wait=0.1)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh network namespace with loopback up (root and iproute2 needed), then removed."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        missing("network namespaces need root and iproute2")
    name = f"lcturn-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_start_in_a_namespace(tmp_path: Path, namespace: str) -> None:
    """In a namespace (as the lab runs it) it starts on port 3478, is probed from inside,
    and its PID is turnserver's own (ip netns exec execs it), so stop() ends it."""
    relay = start_coturn("127.0.0.1", workdir=tmp_path, netns=namespace)
    try:
        assert relay.port == 3478 and relay.urls["tcp"] == "turn:127.0.0.1:3478?transport=tcp"
        assert psutil.Process(relay.process.pid).name() == "turnserver"
        pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
        assert pids.stdout.split() == [str(relay.process.pid)]
    finally:
        relay.stop()
