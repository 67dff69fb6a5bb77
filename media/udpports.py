"""Media UDP sockets inside a port range an operator can open in a firewall.

aioice binds each peer connection's host candidate to an ephemeral port
(port 0); ``PortRange`` hands out sockets bound inside ``--udp-ports
LO-HI`` instead (through ``media.aiortc_seams.ice.gather_on``'s ``bind``). With
max-bundle each peer connection uses one port per host address, so a range
of N ports holds N connections per address; when every port is taken,
``bind`` raises ``PortsExhausted`` and the node refuses the session
(``node_full``). A port is free again once aioice closes its socket; the
range is searched round-robin from the last port handed out.
"""

from __future__ import annotations

import errno
import ipaddress
import socket


class PortsExhausted(OSError):
    """Every port of the media range is in use."""


class PortRange:
    """Binds UDP sockets on ports ``lo..hi`` (inclusive), round-robin."""

    def __init__(self, lo: int, hi: int) -> None:
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"bad port range {lo}-{hi}")
        self.lo, self.hi = lo, hi
        self._next = lo

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.lo <= port <= self.hi

    @property
    def size(self) -> int:
        return self.hi - self.lo + 1

    def bind(self, address: str) -> socket.socket:
        """A non-blocking UDP socket bound to ``address`` on a free port of the range."""
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        for _ in range(self.size):
            port = self._next
            self._next = self.lo if port >= self.hi else port + 1
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock.setblocking(False)
            return sock
        raise PortsExhausted(
            errno.EADDRINUSE, f"every UDP port of {self.lo}-{self.hi} is in use on {address}"
        )
