"""Settings: a pure, frozen object (the secret is read by the CLI, see tests/signalling/cli)."""

from __future__ import annotations

import pytest

from livecore.config import Settings


def test_base_url() -> None:
    """Printed links use the public URL, else the bind address (0.0.0.0 shown as loopback)."""
    assert Settings(port=9000).base_url == "http://127.0.0.1:9000"
    assert Settings(host="0.0.0.0", port=1).base_url == "http://127.0.0.1:1"
    assert Settings(host="::1", port=1).base_url == "http://[::1]:1"
    assert Settings(public_url="https://live.example/").base_url == "https://live.example"


def test_plain_http_webhook_needs_consent() -> None:
    """An http:// orders webhook is refused unless explicitly allowed; https:// is fine."""
    import pytest

    hook = {"orders_webhook_secret": "k" * 32}
    with pytest.raises(ValueError, match="allow-http"):
        Settings(orders_webhook="http://shop.example/hook", **hook).check()  # type: ignore[arg-type]
    Settings(orders_webhook="http://shop.example/hook", orders_webhook_allow_http=True,
             **hook).check()  # type: ignore[arg-type]  # fmt: skip
    Settings(orders_webhook="https://shop.example/hook", **hook).check()  # type: ignore[arg-type]


def test_port_range_parsing() -> None:
    from livecore.config import parse_port_range

    assert parse_port_range("40000-40999") == (40000, 40999)
    assert parse_port_range("40000") == (40000, 40000)
    for bad in ("40999-40000", "80-90", "a-b", "40000-70000", ""):
        with pytest.raises(ValueError, match="--udp-ports"):
            parse_port_range(bad)


def test_keepalive_and_drain_bounds() -> None:
    """The idle timeout must outlast the ping interval; the timers and the kernel
    send buffer are range-checked (0 leaves the buffer to the kernel)."""
    Settings(ws_ping_interval_s=0.5, ws_idle_timeout_s=2, ws_drain_timeout_s=0.5).check()
    Settings(ws_socket_send_buffer=0).check()
    with pytest.raises(ValueError, match="longer than ws_ping_interval_s"):
        Settings(ws_ping_interval_s=5, ws_idle_timeout_s=5).check()
    with pytest.raises(ValueError, match="ws_drain_timeout_s"):
        Settings(ws_drain_timeout_s=0).check()
    with pytest.raises(ValueError, match="ws_socket_send_buffer"):
        Settings(ws_socket_send_buffer=100).check()


def test_the_node_url_is_never_the_public_one() -> None:
    """Other nodes reach a node at --node-url, else its bind address (loopback for a
    wildcard), never at --public-url; a node URL must be http(s)."""
    behind = Settings(host="0.0.0.0", port=9000, public_url="https://live.example")
    assert behind.peer_url == "http://127.0.0.1:9000"
    assert Settings(node_url="http://198.51.100.5:8080/").peer_url == "http://198.51.100.5:8080"
    with pytest.raises(ValueError, match="--node-url"):
        Settings(node_url="198.51.100.5:8080").check()
