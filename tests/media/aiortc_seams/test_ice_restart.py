"""ICE restart in place (``media.aiortc_seams.ice.restart``) with real aioice agents on
loopback: the controlled side keeps its sockets, takes new credentials and the new
remote candidates, answers the controlling side's checks and moves its nominated
pair to the peer's new address (its listeners hear it); data then flows there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceParameters, RTCIceTransport

from media.aiortc_seams import ice as ice_seams
from media.peers import restrict_host_addresses
from media.udpmux import UdpMux
from tests.waiting import eventually


async def agent(
    controlling: bool, mux: UdpMux | None = None
) -> tuple[RTCIceGatherer, RTCIceTransport]:
    """A gatherer (no ICE servers: nothing leaves loopback) and its transport, gathered
    (on ``mux``'s shared socket if given)."""
    gatherer = RTCIceGatherer(iceServers=[])
    muxes = {"127.0.0.1": mux} if mux is not None else None
    restrict_host_addresses(gatherer, ["127.0.0.1"], None, muxes)
    ice_seams.ice_connection(gatherer).ice_controlling = controlling
    await gatherer.gather()
    return gatherer, RTCIceTransport(gatherer)


async def connect(a: RTCIceTransport, b: RTCIceTransport) -> None:
    for one, other in ((a, b), (b, a)):
        for candidate in other.iceGatherer.getLocalCandidates():
            await one.addRemoteCandidate(candidate)
        await one.addRemoteCandidate(None)
    await asyncio.gather(
        a.start(b.iceGatherer.getLocalParameters()), b.start(a.iceGatherer.getLocalParameters())
    )


@pytest.fixture
async def stopped() -> AsyncIterator[list[RTCIceTransport]]:
    transports: list[RTCIceTransport] = []
    yield transports
    for transport in transports:
        await transport.stop()


@pytest.mark.parametrize("shared", [False, True], ids=["own-socket", "udp-mux"])
async def test_restart_moves_the_controlled_side_to_the_new_path(
    stopped: list[RTCIceTransport], shared: bool
) -> None:
    """After a restart the server (controlled) sends to the client's new socket, on the
    same local sockets; its old credentials are gone. On a shared socket (--udp-mux)
    the client's checks from its new address find the session by the new ufrag."""
    mux = await UdpMux.open("127.0.0.1", 0) if shared else None
    _, server = await agent(controlling=False, mux=mux)
    _, client = await agent(controlling=True)
    stopped += [server, client]
    await connect(server, client)
    assert server.state == client.state == "completed"
    connection = ice_seams.ice_connection(server.iceGatherer)
    ports = ice_seams.local_ports(connection)
    old_ufrag = connection.local_username
    moves: list[int] = []
    ice_seams.on_nominated(connection, lambda: moves.append(1))

    # The client moved: a new agent, new sockets, new credentials (its ICE restart).
    _, moved = await agent(controlling=True)
    stopped.append(moved)
    params = moved.iceGatherer.getLocalParameters()
    assert params.usernameFragment and params.password
    ufrag, pwd = ice_seams.restart(server.iceGatherer, params.usernameFragment, params.password)
    assert ufrag != old_ufrag and connection.remote_candidates == []
    for candidate in moved.iceGatherer.getLocalCandidates():
        await server.addRemoteCandidate(candidate)
    await server.addRemoteCandidate(None)
    for candidate in server.iceGatherer.getLocalCandidates():
        await moved.addRemoteCandidate(candidate)
    await moved.addRemoteCandidate(None)
    await moved.start(RTCIceParameters(usernameFragment=ufrag, password=pwd))
    assert moved.state == "completed"

    new_port = ice_seams.local_ports(ice_seams.ice_connection(moved.iceGatherer))[0]

    def route_port() -> bool:
        route = ice_seams.nominated_route(connection)
        return route is not None and route[1][1] == new_port

    await eventually(route_port, within=5, what="the server's route moved")
    assert moves == [1]  # the listener heard the new nomination, once
    assert ice_seams.local_ports(connection) == ports  # same sockets
    await connection.send(b"after the restart")
    received = await asyncio.wait_for(ice_seams.ice_connection(moved.iceGatherer).recv(), 5)
    assert received == b"after the restart"
    assert server.state == "completed"
    if mux is not None:
        assert mux.ufrag_taken(ufrag) and not mux.ufrag_taken(old_ufrag)
        mux.close()


async def test_restart_is_refused_before_ice_completed_and_on_the_controlling_side(
    stopped: list[RTCIceTransport],
) -> None:
    """Nothing to restart before ICE completes; the controlling side is not supported."""
    gatherer, transport = await agent(controlling=False)
    stopped.append(transport)
    with pytest.raises(ValueError, match="not completed"):
        ice_seams.restart(gatherer, "abcd", "x" * 22)
    controlling, other = await agent(controlling=True)
    stopped.append(other)
    with pytest.raises(ValueError, match="controlled side only"):
        ice_seams.restart(controlling, "abcd", "x" * 22)
