"""The routing table and the role check, without a network."""

from __future__ import annotations

import pytest

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import Role
from signalling.hub import routes


def test_every_client_message_but_hello_has_a_route() -> None:
    """A message type without a row would be a KeyError at dispatch."""
    assert set(routes.ROUTES) == set(wire.ClientType) - {wire.ClientType.HELLO}


def test_host_only_messages_refuse_viewers() -> None:
    """A viewer sending poll_open is refused with token_wrong_role naming the allowed roles."""
    roles, _ = routes.ROUTES[wire.ClientType.POLL_OPEN]
    with pytest.raises(LivecoreError) as info:
        routes.check_role(Role.VIEWER, roles, wire.ClientType.POLL_OPEN)
    assert info.value.code is ErrorCode.TOKEN_WRONG_ROLE
    assert "allowed: host" in info.value.message
    routes.check_role(Role.HOST, roles, wire.ClientType.POLL_OPEN)


def test_audience_messages_refuse_hosts() -> None:
    """Votes and joins are for the audience; hosts are refused."""
    for mtype in (wire.ClientType.VOTE, wire.ClientType.GROUPBUY_JOIN):
        roles, _ = routes.ROUTES[mtype]
        with pytest.raises(LivecoreError):
            routes.check_role(Role.HOST, roles, mtype)
        routes.check_role(Role.OFFICER, roles, mtype)


def test_admins_and_devices_send_nothing() -> None:
    """No route admits an admin or a device token."""
    for roles, _ in routes.ROUTES.values():
        assert Role.ADMIN not in roles and Role.DEVICE not in roles
