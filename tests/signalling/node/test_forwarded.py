"""The client behind a trusted proxy, as the websocket cap sees it."""

from __future__ import annotations

from signalling.node.forwarded import client_address, is_trusted


def test_only_a_trusted_peer_forwards() -> None:
    """From an untrusted peer the header is ignored; from a trusted one the nearest
    untrusted hop is the client; junk in the header means the peer."""
    assert client_address("10.0.0.5", ["1.2.3.4"], ()) == "10.0.0.5"
    assert client_address("10.0.0.5", ["1.2.3.4"], ("10.0.0.6",)) == "10.0.0.5"
    assert client_address("10.0.0.5", ["1.2.3.4"], ("10.0.0.5",)) == "1.2.3.4"
    assert client_address("10.0.0.5", ["9.9.9.9, 1.2.3.4, 10.0.0.7"], ("10.0.0.0/24",)) == "1.2.3.4"
    assert client_address("10.0.0.5", [], ("10.0.0.5",)) == "10.0.0.5"
    assert client_address("10.0.0.5", ["not-an-ip"], ("*",)) == "10.0.0.5"
    assert client_address("::1", ["2001:db8::1"], ("::1",)) == "2001:db8::1"
    assert is_trusted("10.0.0.9", ("10.0.0.0/8",)) and not is_trusted("junk", ("*",))
