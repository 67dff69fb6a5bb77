"""Settings: a pure, frozen object (the secret is read by the CLI, see tests/livecore/cli)."""

from __future__ import annotations

from livecore.config import Settings


def test_base_url() -> None:
    """Printed links use the public URL, else the bind address (0.0.0.0 shown as loopback)."""
    assert Settings(port=9000).base_url == "http://127.0.0.1:9000"
    assert Settings(host="0.0.0.0", port=1).base_url == "http://127.0.0.1:1"
    assert Settings(host="::1", port=1).base_url == "http://[::1]:1"
    assert Settings(public_url="https://live.example/").base_url == "https://live.example"
