"""Start a real coturn (Debian's ``turnserver``) for tests and the network lab.

    relay = start_coturn("127.0.0.1", workdir=tmp)          # loopback, tests
    relay = start_coturn("203.0.113.3", workdir=tmp, netns="lab-turn",
                         allowed_peers=("203.0.113.10",))   # in a lab namespace
    relay.urls["udp"], relay.urls["tcp"]   # turn:ADDR:PORT?transport=udp|tcp
    relay.urls["tls"]                      # turns:ADDR:TLSPORT?transport=tcp, with tls=
    relay.secret                           # what the node's --turn-secret-file holds
    relay.stop()                           # SIGTERM to its PID, then SIGKILL

The config is generated (``turnserver.conf`` in ``workdir``, mode 0600, the
secret only there, never on a command line): TURN REST API credentials
(``use-auth-secret`` + ``static-auth-secret``), one listening/relay address,
UDP and TCP listeners, no TLS/DTLS, no CLI, no database outside ``workdir``,
bounded allocations; TLS (``turns:``) only when ``tls=(cert, key)`` is given.
Peers: everything is denied except ``allowed_peers``
(coturn 4.6 also refuses loopback peers unless ``allow-loopback-peers``,
which is set only when an allowed peer is a loopback address): the least a
relay for media nodes needs.

Ready means answering a STUN Binding request over UDP and over TCP; inside
a namespace the probe runs there (``ip netns exec NS python -m
loadtests.coturn --probe ADDR PORT``). Bounded: ``timeout`` to start.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TURNSERVER = "turnserver"
REALM = "livecore.test"
_ROOT = Path(__file__).resolve().parent.parent
_MAGIC = b"\x21\x12\xa4\x42"


@dataclass
class Coturn:
    """A running ``turnserver``: its process, address, port and shared secret."""

    process: subprocess.Popen[bytes]
    address: str
    port: int
    secret: str
    workdir: Path
    realm: str = REALM
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def secret_file(self) -> Path:
        """The secret alone in a file (mode 0600), for the node's --turn-secret-file."""
        return self.workdir / "turn-secret"

    @property
    def log_path(self) -> Path:
        return self.workdir / "turnserver.log"

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM to its PID (then SIGKILL); returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode


def coturn_available() -> bool:
    return shutil.which(TURNSERVER) is not None


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on ``address`` for both UDP and TCP (the host's namespace only)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no port free for both UDP and TCP on {address}")


def config_text(
    address: str,
    port: int,
    secret: str,
    workdir: Path,
    allowed_peers: tuple[str, ...],
    tls: tuple[Path, Path, int] | None = None,
) -> str:
    """coturn's configuration for :func:`start_coturn` (see the module docstring);
    ``tls``: certificate, key and TLS port."""
    tls_lines = ["no-tls"]
    if tls is not None:
        cert, key, tls_port = tls
        tls_lines = [f"tls-listening-port={tls_port}", f"cert={cert}", f"pkey={key}",
                     "no-tlsv1", "no-tlsv1_1"]  # fmt: skip
    lines = [
        f"listening-ip={address}",
        f"relay-ip={address}",
        f"listening-port={port}",
        f"realm={REALM}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        "fingerprint",
        "no-cli",
        *tls_lines,
        "no-dtls",
        "no-software-attribute",
        "no-multicast-peers",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "no-dynamic-ip-list",
        "no-dynamic-realms",
        "no-auth-pings",
        "total-quota=200",
        "user-quota=20",
        f"userdb={workdir / 'turndb'}",
        f"pidfile={workdir / 'turnserver.pid'}",
        f"log-file={workdir / 'turnserver.log'}",
        "simple-log",
        "no-stdout-log",
        "denied-peer-ip=0.0.0.0-255.255.255.255",
        "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    lines += [f"allowed-peer-ip={peer}" for peer in allowed_peers]
    if any(ipaddress.ip_address(p).is_loopback for p in allowed_peers):
        lines.append("allow-loopback-peers")
    return "\n".join(lines) + "\n"


def start_coturn(
    address: str = "127.0.0.1",
    *,
    workdir: Path,
    port: int | None = None,
    netns: str | None = None,
    allowed_peers: tuple[str, ...] | None = None,
    secret: str | None = None,
    tls: tuple[Path, Path] | None = None,
    timeout: float = 10.0,
) -> Coturn:
    """Start ``turnserver`` on ``address`` and wait until it answers STUN over UDP and TCP.

    ``port``: the listening port (default: one free on ``address`` here, which
    needs a port given explicitly inside a namespace: 3478). ``netns``: run it
    in that network namespace (``ip netns exec``). ``allowed_peers``: the only
    addresses it relays to (default: ``address``, the media node beside it on
    loopback). ``tls``: a certificate and its key (PEM) to listen for TLS too, on
    5349 in a namespace, else a free port (``urls["tls"]``). Raises ``RuntimeError``
    with the end of its log if it exits or does not answer within ``timeout``; the
    caller must ``stop()`` the result.
    """
    if not coturn_available():
        raise RuntimeError("turnserver not found: apt-get install coturn (make system)")
    workdir.mkdir(parents=True, exist_ok=True)
    if port is None:
        port = 3478 if netns else free_port(address)
    secret = secret or secrets.token_hex(24)
    peers = allowed_peers if allowed_peers is not None else (address,)
    conf = workdir / "turnserver.conf"
    tls_port = 5349 if netns else free_port(address)
    tls_conf = (tls[0], tls[1], tls_port) if tls is not None else None
    _write_private(conf, config_text(address, port, secret, workdir, peers, tls_conf))
    _write_private(workdir / "turn-secret", secret + "\n")
    prefix = ["ip", "netns", "exec", netns] if netns else []
    with (workdir / "turnserver.out").open("wb") as out:
        process = subprocess.Popen(
            [*prefix, TURNSERVER, "-c", str(conf)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    host = f"[{address}]" if ":" in address else address
    relay = Coturn(process, address, port, secret, workdir)
    relay.urls = {t: f"turn:{host}:{port}?transport={t}" for t in ("udp", "tcp")}
    if tls is not None:
        relay.urls["tls"] = f"turns:{host}:{tls_port}?transport=tcp"
    try:
        _wait_started(relay, prefix, timeout)
    except BaseException:
        relay.stop()
        raise
    return relay


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _wait_started(relay: Coturn, prefix: list[str], timeout: float) -> None:
    if prefix:
        probe = [*prefix, sys.executable, "-m", "loadtests.coturn", "--probe"]
        probe += [relay.address, str(relay.port), "--timeout", str(timeout)]
        done = subprocess.run(probe, cwd=_ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"coturn not answering in {prefix[-1]}: {done.stderr[-500:]}")
        return
    deadline = time.monotonic() + timeout
    while not stun_answers(relay.address, relay.port):
        if relay.process.poll() is not None or time.monotonic() > deadline:
            log = relay.log_path.read_text() if relay.log_path.exists() else ""
            state = f"exited {relay.process.returncode}" if relay.process.poll() else "silent"
            raise RuntimeError(f"coturn {state} on {relay.address}:{relay.port}: {log[-1500:]}")


def _binding_request() -> tuple[bytes, bytes]:
    tid = secrets.token_bytes(12)
    return b"\x00\x01\x00\x00" + _MAGIC + tid, tid


def stun_answers(address: str, port: int, wait: float = 0.3) -> bool:
    """Whether a STUN server on ``address:port`` answers a Binding request over UDP
    and over TCP within ``wait`` seconds each (RFC 8489 §6: a success response,
    0x0101, with our transaction id)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    request, tid = _binding_request()
    with socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.settimeout(wait)
        try:
            udp.sendto(request, (address, port))
            answer = udp.recv(2048)
        except OSError:  # refused (not bound yet) or timed out
            return False
    if answer[:2] != b"\x01\x01" or answer[8:20] != tid:
        return False
    request, tid = _binding_request()
    try:
        with socket.create_connection((address, port), timeout=wait) as tcp:
            tcp.sendall(request)
            answer = tcp.recv(2048)
    except OSError:
        return False
    return answer[:2] == b"\x01\x01" and answer[8:20] == tid


def _probe_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.coturn")
    parser.add_argument("--probe", nargs=2, metavar=("ADDR", "PORT"), required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    address, port = args.probe[0], int(args.probe[1])
    deadline = time.monotonic() + args.timeout
    while not stun_answers(address, port):
        if time.monotonic() > deadline:
            print(f"no STUN answer from {address}:{port}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(_probe_main())
