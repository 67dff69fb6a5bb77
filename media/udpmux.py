"""One UDP port per node for every WebRTC session (ICE by username fragment).

As mediasoup's WebRtcServer and LiveKit do: the node listens on one UDP
socket per ICE address (``--udp-mux PORT``) and every peer connection's host
candidate is that socket. Each aioice ``Connection`` still has its own
``StunProtocol`` and does its own ICE, but the protocol's transport is a
``_MuxTransport`` that sends on the shared socket. Incoming datagrams are
routed by the sender's address to the session that address belongs to; an
address seen for the first time must come with a STUN binding request whose
USERNAME starts with a session's local ufrag (RFC 8445 §7.3), which names
the session. Outbound sends (ICE checks) bind the destination address too.
aioice then checks MESSAGE-INTEGRITY as usual, so a datagram routed to the
wrong session is refused there.

Bounded: at most ``MAX_ADDRESSES_PER_SESSION`` remote addresses per session
(the oldest is forgotten), and a session's entries leave with it. The lean
forwarder sends on the same socket (a ``dup`` of it), with each viewer's
address.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from typing import Any, cast

from aioice import stun
from aioice.ice import StunProtocol

logger = logging.getLogger(__name__)

MAX_ADDRESSES_PER_SESSION = 8
Addr = tuple[Any, ...]


def _key(addr: Addr) -> tuple[str, int]:
    return str(addr[0]), int(addr[1])


class _MuxTransport(asyncio.DatagramTransport):
    """What one session's ``StunProtocol`` sees as its transport: the shared socket."""

    def __init__(self, mux: UdpMux, protocol: StunProtocol, ufrag: str) -> None:
        super().__init__()
        self._mux = mux
        self._protocol = protocol
        self.ufrag = ufrag
        self._closing = False
        self.addresses: OrderedDict[tuple[str, int], None] = OrderedDict()

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing or addr is None:
            return
        self._mux.bind_address(self, _key(addr))
        self._mux.sendto(data, addr)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._mux.get_extra_info(name, default)

    def taken(self, ufrag: str) -> bool:
        """Whether another session of the mux has ``ufrag``."""
        return self._mux.ufrag_taken(ufrag)

    def rekey(self, ufrag: str) -> None:
        """Route STUN for ``ufrag`` here instead of the old one (an ICE restart)."""
        self._mux.rekey(self, ufrag)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._mux.forget(self)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()


class UdpMux(asyncio.DatagramProtocol):
    """The node's shared UDP socket on one address, and the routing of its datagrams."""

    def __init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._by_ufrag: dict[str, _MuxTransport] = {}
        self._by_address: dict[tuple[str, int], _MuxTransport] = {}
        self.dropped = 0

    @classmethod
    async def open(cls, address: str, port: int) -> UdpMux:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            sock.bind((address, port))
            sock.setblocking(False)
            mux = cls()
            await loop.create_datagram_endpoint(lambda: mux, sock=sock)
        except BaseException:
            sock.close()
            raise
        return mux

    # -- the shared socket ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self._transport is None:
            return default
        return self._transport.get_extra_info(name, default)

    @property
    def port(self) -> int:
        return int(self.get_extra_info("sockname")[1])

    def sendto(self, data: Any, addr: Addr) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        key = _key(addr)
        session = self._by_address.get(key)
        if session is None:
            session = self._session_of_request(data)
            if session is None:
                self.dropped += 1
                return
            self.bind_address(session, key)
        session._protocol.datagram_received(data, addr)  # noqa: SLF001 - this module's class

    def _session_of_request(self, data: bytes) -> _MuxTransport | None:
        """The session a STUN binding request is for (its USERNAME's first part)."""
        if len(data) < 20 or data[0] > 3:
            return None
        try:
            message = stun.parse_message(data)
        except ValueError:
            return None
        username = message.attributes.get("USERNAME")
        if message.message_class != stun.Class.REQUEST or not isinstance(username, str):
            return None
        return self._by_ufrag.get(username.split(":", 1)[0])

    def error_received(self, exc: Exception) -> None:
        logger.debug("udp mux: %s", exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # -- sessions ---------------------------------------------------------------------

    def attach(self, protocol: StunProtocol, ufrag: str) -> _MuxTransport:
        """Give ``protocol`` (one session's) the shared socket; incoming STUN for ``ufrag``."""
        if ufrag in self._by_ufrag:
            raise ValueError(f"ufrag {ufrag!r} is taken")
        transport = _MuxTransport(self, protocol, ufrag)
        self._by_ufrag[ufrag] = transport
        protocol.connection_made(transport)
        return transport

    def ufrag_taken(self, ufrag: str) -> bool:
        return ufrag in self._by_ufrag

    def rekey(self, session: _MuxTransport, ufrag: str) -> None:
        """``session``'s new local ufrag (ICE restart); its known addresses stay bound."""
        if ufrag in self._by_ufrag:
            raise ValueError(f"ufrag {ufrag!r} is taken")
        if self._by_ufrag.get(session.ufrag) is session:
            del self._by_ufrag[session.ufrag]
        session.ufrag = ufrag
        self._by_ufrag[ufrag] = session

    def bind_address(self, session: _MuxTransport, key: tuple[str, int]) -> None:
        current = self._by_address.get(key)
        if current is session:
            return
        if current is not None:
            current.addresses.pop(key, None)
        self._by_address[key] = session
        session.addresses[key] = None
        while len(session.addresses) > MAX_ADDRESSES_PER_SESSION:
            old, _ = session.addresses.popitem(last=False)
            if self._by_address.get(old) is session:
                del self._by_address[old]

    def forget(self, session: _MuxTransport) -> None:
        if self._by_ufrag.get(session.ufrag) is session:
            del self._by_ufrag[session.ufrag]
        for key in session.addresses:
            if self._by_address.get(key) is session:
                del self._by_address[key]
        session.addresses.clear()

    @property
    def sessions(self) -> int:
        return len(self._by_ufrag)
