"""The ICE seams: the aioice ``Connection`` behind aiortc, its host candidates and sockets.

aioice 0.13 gathers host candidates on every interface, one ephemeral port
each; ``gather_on`` restricts a connection to configured addresses and, with
``media.udpports`` or ``media.udpmux``, to sockets in a port range or one
shared socket per address (``media.peers`` installs it). The lean forwarder
sends on the socket and remote address ICE nominated; the lean load-test
viewer reads from the connection's UDP protocols. Every private name is read
or set here, one accessor per seam.

Consent freshness (RFC 7675): aioice checks consent every 5 s and closes the
connection after 6 checks in a row went unanswered, so a peer that vanished
(a phone out of coverage, a killed app) is held about 30 s. ``check_consent``
replaces that loop on one connection by a faster one (``media.peers``
installs it with ``PeerConfig.consent_interval_s``/``consent_expiry_s``).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from aioice import Candidate, Connection, stun, turn
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aioice.utils import random_string as aioice_random_string
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport

from media.aiortc_seams.introspect import Checks, code_names

_GATHER_ON = "livecore_host_addresses"
"""Our own mark on an aioice ``Connection``: the addresses ``gather_on`` restricted it to."""
_CONSENT_RENEW = "livecore_consent_renew"
"""Our own mark: the callable that renews a connection's consent (``check_consent``)."""


def checks() -> Checks:
    """The ICE seams, checked against the installed aiortc and aioice."""
    gather_needed = {"_local_candidates_start", "get_component_candidates", "_local_candidates"}
    gather_needed |= {"_local_candidates_end", "_components"}
    host_needed = {"create_datagram_endpoint", "StunProtocol", "Candidate", "_protocols"}
    host_needed |= {"candidate_foundation", "candidate_priority", "local_candidate"}
    return {
        "aioice Connection.sendto sends on the nominated pair's protocol": (
            {"_nominated", "protocol", "remote_addr"} <= code_names(Connection.sendto)
        ),
        "aioice get_component_candidates binds one StunProtocol per host address": (
            host_needed <= code_names(Connection.get_component_candidates)
        ),
        "aioice Connection.gather_candidates(self) gathers per component": (
            gather_needed <= code_names(Connection.gather_candidates)
            and Connection.get_component_candidates.__code__.co_varnames[:3]
            == ("self", "component", "addresses")
        ),
        "RTCIceGatherer and RTCIceTransport share one aioice Connection": (
            "_connection" in code_names(RTCIceGatherer.__init__)
            and "_connection" in code_names(RTCIceTransport.__init__)
        ),
        "aioice StunProtocol.datagram_received feeds Connection.data_received": (
            "data_received" in code_names(StunProtocol.datagram_received)
        ),
        "aioice Connection keeps its StunProtocols in _protocols, its ufrag in _local_username": (
            {"_protocols", "_local_username"} <= code_names(Connection.__init__)
        ),
        "aioice Connection.connect starts self.query_consent() once ICE completed": (
            {"query_consent", "_query_consent_task"} <= code_names(Connection.connect)
        ),
        "aioice request_received hands only authenticated checks to check_incoming": (
            {"check_message_integrity", "check_incoming"} <= code_names(Connection.request_received)
        ),
        "aioice query_consent checks the nominated pairs, closes on expiry": (
            {"_nominated", "build_request", "close"} <= code_names(Connection.query_consent)
        ),
        "aioice Connection keeps its check list, remote candidates and their end flag": (
            {"_check_list", "_remote_candidates", "_remote_candidates_end", "_local_password"}
            <= code_names(Connection.__init__)
            and "_remote_candidates_end" in code_names(RTCIceGatherer.__init__)
            and "_valid_username" in code_names(Connection.request_received)
        ),
        "aioice check_complete records a nomination in _nominated[component]": (
            "_nominated" in code_names(Connection.check_complete)
        ),
        "aioice StunProtocol hands STUN responses to transactions[id].response_received": (
            {"transactions", "response_received"} <= code_names(StunProtocol.datagram_received)
        ),
    }


def ice_connection(gatherer: RTCIceGatherer) -> Connection:
    """The aioice ``Connection`` behind a gatherer (and its ``RTCIceTransport``)."""
    connection: Connection = gatherer._connection  # noqa: SLF001 - ICE seam
    return connection


def gathered(connection: Connection) -> bool:
    """True once the connection started gathering local candidates."""
    return bool(connection._local_candidates_start)  # noqa: SLF001 - ICE seam


BindSocket = Callable[[str], socket.socket]
"""Returns a UDP socket bound on the given local address (e.g. to a port in a range)."""


@runtime_checkable
class Rekeyable(Protocol):
    """A session's transport on a shared socket (``media.udpmux``): routed by its ufrag."""

    def taken(self, ufrag: str) -> bool: ...
    def rekey(self, ufrag: str) -> None: ...


class HostMux(Protocol):
    """A shared UDP socket for many connections (``media.udpmux.UdpMux``)."""

    def attach(self, protocol: StunProtocol, ufrag: str) -> Any: ...
    def ufrag_taken(self, ufrag: str) -> bool: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def gather_on(
    connection: Connection,
    addresses: Sequence[str],
    bind: BindSocket | None = None,
    muxes: Mapping[str, HostMux] | None = None,
) -> None:
    """Make ``connection.gather_candidates()`` gather host candidates on ``addresses`` only.

    aioice's ``Connection.gather_candidates`` with the address list replaced
    (aioice 0.13 has no option for it); an instance override. With ``bind``,
    host candidates use the sockets it returns (aioice binds port 0, any
    ephemeral port): the host part of aioice's ``get_component_candidates``
    is done here, and aioice's own then adds only STUN/TURN candidates. An
    ``OSError`` from ``bind`` (e.g. no free port) propagates. With ``muxes``
    (address → shared socket), the host candidate of each address is that
    socket, shared with other connections (the local ufrag is made unique
    among them first).
    """
    wanted = list(addresses)
    setattr(connection, _GATHER_ON, wanted)

    async def gather_candidates() -> None:
        if connection._local_candidates_start:  # noqa: SLF001 - ICE seam
            return
        connection._local_candidates_start = True  # noqa: SLF001 - ICE seam
        for component in sorted(connection._components):  # noqa: SLF001 - ICE seam
            if muxes is not None:
                connection._local_candidates += _muxed_host_candidates(  # noqa: SLF001 - ICE seam
                    connection, component, wanted, muxes
                )
            elif bind is not None:
                connection._local_candidates += await _bound_host_candidates(  # noqa: SLF001 - ICE seam
                    connection, component, wanted, bind
                )
            own = bind is not None or muxes is not None
            connection._local_candidates += await connection.get_component_candidates(  # noqa: SLF001 - ICE seam
                component=component, addresses=[] if own else wanted
            )
        connection._local_candidates_end = True  # noqa: SLF001 - ICE seam

    connection.gather_candidates = gather_candidates  # type: ignore[method-assign]


def _host_candidate(protocol: StunProtocol, component: int, host: str, port: int) -> Candidate:
    protocol.local_candidate = Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host"),
        host=host,
        port=port,
        type="host",
    )
    return protocol.local_candidate


def _muxed_host_candidates(
    connection: Connection, component: int, addresses: list[str], muxes: Mapping[str, HostMux]
) -> list[Candidate]:
    """Host candidates on shared sockets: one ``StunProtocol`` per address, the mux's socket."""
    candidates: list[Candidate] = []
    usable = [a for a in addresses if a in muxes]
    while any(muxes[a].ufrag_taken(connection.local_username) for a in usable):
        connection._local_username = aioice_random_string(4)  # noqa: SLF001 - ICE seam
    for address in usable:
        protocol = StunProtocol(connection)
        muxes[address].attach(protocol, connection.local_username)
        host, port = muxes[address].get_extra_info("sockname")[:2]
        connection._protocols.append(protocol)  # noqa: SLF001 - ICE seam
        candidates.append(_host_candidate(protocol, component, host, port))
    return candidates


async def _bound_host_candidates(
    connection: Connection, component: int, addresses: list[str], bind: BindSocket
) -> list[Candidate]:
    """aioice's host-candidate gathering (``get_component_candidates``) on ``bind``'s sockets."""
    loop = asyncio.get_running_loop()
    candidates: list[Candidate] = []
    for address in addresses:
        sock = bind(address)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: StunProtocol(connection), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        connection._protocols.append(protocol)  # noqa: SLF001 - ICE seam
        candidates.append(_host_candidate(protocol, component, host, port))
    return candidates


class _ConsentCheck:
    """One consent check in flight, registered where aioice's ``StunProtocol`` hands a
    STUN response to its transaction (``transactions[id].response_received``)."""

    def __init__(self, key: bytes, answered: Callable[[], None]) -> None:
        self.key = key
        self.answered = answered

    def response_received(self, message: stun.Message, addr: tuple[str, int]) -> None:
        # Only a success response signed with the peer's password renews consent
        # (RFC 7675 §5.1, RFC 8489 §9.1.4).
        if message.message_class == stun.Class.RESPONSE and message.check_message_integrity(
            self.key
        ):
            self.answered()


def check_consent(connection: Connection, interval_s: float, expiry_s: float) -> None:
    """Check consent (RFC 7675) every ``interval_s`` (randomised ×0.8-1.2, §5.1) and close
    ``connection`` once no check has been answered for ``expiry_s``.

    Replaces aioice's ``query_consent`` on this connection (an instance
    override, installed before ``connect()`` starts it). Each check is one
    STUN Binding request on every nominated pair (not retransmitted, as
    aioice's); an answer counts whenever it is read, however late, and
    consent expires only after ``expiry_s`` without one *and* as many checks
    sent since as fit in ``expiry_s`` (less one), so a busy event loop (a
    join storm) that reads answers late or wakes this task late does not
    expire a peer that is there. Closing the connection is what aioice does
    on expiry: the ``RTCIceTransport`` turns ``failed``, so does the peer
    connection. A vanished peer is noticed ``expiry_s`` to ``expiry_s + 1.2 *
    interval_s`` after its last answer. RFC 7675 bounds expiry from above
    only (30 s).

    A check the peer sends us on the path in use (a nominated pair),
    authenticated with our password (aioice answers it, then hands it to
    ``check_incoming``), shows as well as an answer that the peer is there
    and still wants this session: it renews consent too, and no check is
    sent in a round that follows one. Browsers send such checks every 2.5 s;
    two peers that both check every second exchange two packets a second
    per viewer that a node of thousands of viewers need not send or read.
    """
    if interval_s <= 0 or expiry_s < 2 * interval_s:
        raise ValueError("consent: interval must be > 0 and expiry at least two intervals")
    checks_to_expire = max(1, int(expiry_s / interval_s) - 1)
    renewed = [0.0, 0]  # when consent was last renewed (loop time), checks unanswered since

    def answered() -> None:
        renewed[0], renewed[1] = asyncio.get_running_loop().time(), 0

    original_incoming = connection.check_incoming

    def check_incoming(message: stun.Message, addr: tuple[str, int], protocol: Any) -> None:
        # aioice calls this only for a request that passed authentication; one on the
        # path media takes renews consent (one from elsewhere, e.g. the address a phone
        # left, is the peer's business: the path in use must still answer).
        original_incoming(message, addr, protocol)
        nominated = connection._nominated.values()  # noqa: SLF001 - consent seam
        if any(p.protocol is protocol and tuple(p.remote_addr) == tuple(addr) for p in nominated):
            answered()

    connection.check_incoming = check_incoming  # type: ignore[method-assign]

    async def query_consent() -> None:
        loop = asyncio.get_running_loop()
        answered()
        in_flight: deque[tuple[StunProtocol, bytes]] = deque()
        setattr(connection, _CONSENT_RENEW, answered)
        check = _ConsentCheck(b"", answered)
        try:
            while True:
                await asyncio.sleep(interval_s * random.uniform(0.8, 1.2))
                now = loop.time()
                if now - renewed[0] >= expiry_s and renewed[1] >= checks_to_expire:
                    connection._query_consent_task = None  # noqa: SLF001 - consent seam
                    await connection.close()
                    return
                if now - renewed[0] < interval_s * 0.8:
                    continue  # the peer's own check renewed it this round
                password = connection.remote_password  # an ICE restart may change it
                assert password is not None, "consent checks start once connect() has it"
                check = _ConsentCheck(password.encode("utf8"), answered)
                for pair in list(connection._nominated.values()):  # noqa: SLF001 - consent seam
                    request = connection.build_request(pair, nominate=False)
                    request.add_message_integrity(check.key)
                    pair.protocol.transactions[request.transaction_id] = check  # type: ignore[assignment]
                    in_flight.append((pair.protocol, request.transaction_id))
                    pair.protocol.send_stun(request, pair.remote_addr)
                renewed[1] += 1
                while len(in_flight) > checks_to_expire + 2:  # bounded: older ones are moot
                    protocol, transaction_id = in_flight.popleft()
                    protocol.transactions.pop(transaction_id, None)
        finally:
            for protocol, transaction_id in in_flight:
                protocol.transactions.pop(transaction_id, None)

    connection.query_consent = query_consent  # type: ignore[method-assign]


def restart(gatherer: RTCIceGatherer, remote_ufrag: str, remote_pwd: str) -> tuple[str, str]:
    """Restart ICE in place (RFC 8445 §9) on a connected, *controlled* connection; returns
    its new local (ufrag, pwd). aioice 0.13 has no ICE restart.

    The local candidates and sockets stay (RFC 8839 §4.4.1.1.1 allows the same
    set); the credentials are new on both sides; the remote candidates and
    the check list are dropped (RFC 9725 §4.3.2), so the caller adds the new
    remote candidates (``addIceCandidate``) afterwards. The nominated pair
    stays until the peer (controlling) nominates a new one through its
    checks, which this side answers and triggers checks for (RFC 8445
    §7.3.1.4): data keeps flowing on the old path while it lives, and the
    DTLS association is untouched. A socket shared with ``media.udpmux`` is
    re-keyed to the new ufrag. Consent is renewed once, so the new path has a
    full expiry to come up; if it never does, consent expires as usual.
    """
    connection = ice_connection(gatherer)
    if connection.ice_controlling:
        raise ValueError("ICE restart in place is implemented for the controlled side only")
    if not connection._nominated:  # noqa: SLF001 - restart seam
        raise ValueError("ICE has not completed yet: nothing to restart")
    ufrag = aioice_random_string(4)
    muxed = [t for p in stun_protocols(connection) if isinstance(t := p.transport, Rekeyable)]
    while any(t.taken(ufrag) for t in muxed):
        ufrag = aioice_random_string(4)
    for transport in muxed:
        transport.rekey(ufrag)
    connection._local_username = ufrag  # noqa: SLF001 - restart seam
    connection._local_password = aioice_random_string(22)  # noqa: SLF001 - restart seam
    connection.remote_username, connection.remote_password = remote_ufrag, remote_pwd
    for pair in connection._check_list:  # noqa: SLF001 - restart seam
        if pair.task is not None:
            pair.task.cancel()
    connection._check_list.clear()  # noqa: SLF001 - restart seam
    connection._remote_candidates.clear()  # noqa: SLF001 - restart seam
    connection._remote_candidates_end = False  # noqa: SLF001 - restart seam
    gatherer._remote_candidates_end = False  # noqa: SLF001 - restart seam (aiortc's flag)
    renew: Callable[[], None] | None = getattr(connection, _CONSENT_RENEW, None)
    if renew is not None:
        renew()
    return connection.local_username, connection.local_password


def gathering_addresses(connection: Connection) -> list[str] | None:
    """The addresses ``gather_on`` restricted ``connection`` to, or None."""
    addresses: list[str] | None = getattr(connection, _GATHER_ON, None)
    return addresses


def stun_protocols(connection: Connection) -> list[StunProtocol]:
    """The UDP protocols (one per local socket) of a connection that gathered."""
    protocols: list[StunProtocol] = connection._protocols  # noqa: SLF001 - lean receive seam
    return protocols


# -- the lean forwarder's route ----------------------------------------------


def nominated_route(connection: Connection) -> tuple[socket.socket, tuple[Any, ...]] | None:
    """The socket and remote address ICE selected for component 1, or None."""
    pair = connection._nominated.get(1)  # noqa: SLF001 - lean send seam
    if pair is None or pair.protocol.transport is None:
        return None
    sock = pair.protocol.transport.get_extra_info("socket")
    if sock is None:
        return None
    return sock, tuple(pair.remote_addr)


class _NominatedPairs(dict[int, Any]):
    """aioice's ``Connection._nominated`` (component → nominated pair) that calls its
    listeners when a component's pair is replaced by another (``on_nominated``)."""

    def __init__(self, pairs: dict[int, Any]) -> None:
        super().__init__(pairs)
        self.listeners: dict[Callable[[], None], None] = {}

    def __setitem__(self, component: int, pair: Any) -> None:
        before = self.get(component)
        super().__setitem__(component, pair)
        if before is not None and before is not pair:
            for listener in list(self.listeners):
                listener()


def on_nominated(connection: Connection, listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener()`` each time the peer (controlling) nominates another pair than
    the one in use: after an ICE restart (RFC 8445 §9), or a renomination. Returns
    the callable that removes it. The first nomination (ICE completing) is not one."""
    pairs = connection._nominated  # noqa: SLF001 - nomination seam
    if not isinstance(pairs, _NominatedPairs):
        pairs = connection._nominated = _NominatedPairs(pairs)  # noqa: SLF001 - nomination seam
    pairs.listeners[listener] = None

    def remove() -> None:
        pairs.listeners.pop(listener, None)

    return remove


def local_ports(connection: Connection) -> list[int]:
    """The local UDP ports of a connection's sockets (for tests and metrics)."""
    return [int(p.local_candidate.port) for p in stun_protocols(connection)]
