"""``/metrics``: open to a scraper on the node's machine and on ``--metrics-listen``;
from anywhere else (or through a proxy) an admin token."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.helpers import Node, free_port, token


def test_metrics_need_an_admin_token_unless_local_or_on_the_metrics_address(
    tmp_path: Path, redis_url: str
) -> None:
    """Loopback without a proxy header: 200. Proxied (a forwarding header): 401 without
    a token, 403 with a host's, 200 with an admin's. The --metrics-listen address serves
    /metrics with no token and nothing else; every answer carries the security headers."""
    port = free_port()
    node = Node(tmp_path / "n", redis_url=redis_url,
                extra_args=["--metrics-listen", f"127.0.0.1:{port}"]).start()  # fmt: skip
    try:
        local = httpx.get(f"{node.url}/metrics")
        assert local.status_code == 200 and "livecore_" in local.text
        assert local.headers["x-content-type-options"] == "nosniff"
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        refused = httpx.get(f"{node.url}/metrics", headers=proxied)
        assert refused.status_code == 401 and refused.json()["code"] == "token_missing"
        host = {"Authorization": f"Bearer {token('host', 'h1')}", **proxied}
        assert httpx.get(f"{node.url}/metrics", headers=host).status_code == 403
        admin = {"Authorization": f"Bearer {token('admin', 'ops', room='*')}", **proxied}
        assert httpx.get(f"{node.url}/metrics", headers=admin).status_code == 200
        scraper = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=proxied)
        assert scraper.status_code == 200 and "livecore_uptime" in scraper.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/api/rooms").status_code == 404
    finally:
        node.stop()
