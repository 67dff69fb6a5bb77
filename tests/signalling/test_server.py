"""The server as a real subprocess: health, shutdown, store choices, start errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import redis

from livecore.valkey.embedded import EmbeddedValkey
from tests.helpers import ROOT, Node, free_port, valkey_children, wait_gone


def test_embedded_valkey_health_and_clean_sigterm(tmp_path: Path) -> None:
    """With no --redis, /healthz is 200 on the embedded Valkey; SIGTERM leaves no valkey behind."""
    node = Node(tmp_path / "data").start()
    assert node.proc is not None
    health = httpx.get(f"{node.url}/healthz").json()
    assert health["redis"] is True and health["status"] == "ok"
    assert health["node_id"] and health["uptime_s"] >= 0
    children = valkey_children(node.proc.pid)
    assert len(children) == 1
    assert node.stop(signal.SIGTERM) == 0
    assert wait_gone(children[0].pid)
    assert (tmp_path / "data" / "valkey" / "appendonlydir").is_dir()


def test_sigint_also_clean(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) shuts down the same way, exit code 0."""
    node = Node(tmp_path / "data").start()
    assert node.proc is not None
    children = valkey_children(node.proc.pid)
    assert node.stop(signal.SIGINT) == 0
    assert all(wait_gone(c.pid) for c in children)


def test_sigkill_leaves_no_orphan(tmp_path: Path) -> None:
    """Even a killed server takes its embedded Valkey down (parent-death signal)."""
    node = Node(tmp_path / "data").start()
    assert node.proc is not None
    children = valkey_children(node.proc.pid)
    node.stop(signal.SIGKILL)
    assert children and all(wait_gone(c.pid) for c in children)


def test_external_valkey_url(tmp_path: Path) -> None:
    """--redis points the node at an operator's Valkey; no embedded one is started."""
    with EmbeddedValkey(tmp_path / "ext", tcp_port=free_port()) as ext:
        url = ext.tcp_url
        node = Node(tmp_path / "data", redis_url=url).start()
        assert node.proc is not None
        try:
            assert valkey_children(node.proc.pid) == []
            assert httpx.get(f"{node.url}/healthz").status_code == 200
            assert redis.Redis.from_url(url).ping()
        finally:
            node.stop()


def test_health_503_when_redis_goes_away(tmp_path: Path) -> None:
    """/healthz turns 503 with redis=false when the store stops answering."""
    ext = EmbeddedValkey(tmp_path / "ext", tcp_port=free_port())
    ext.start()
    node = Node(tmp_path / "data", redis_url=ext.tcp_url).start()
    try:
        ext.stop()
        answer = httpx.get(f"{node.url}/healthz", timeout=5)
        assert answer.status_code == 503
        assert answer.json()["redis"] is False
    finally:
        node.stop()


def test_missing_valkey_binary_is_one_clear_line(tmp_path: Path) -> None:
    """No Valkey binary: exit code 2 and one line on stderr saying how to fix it."""
    node = Node(tmp_path / "data", extra_env={"LIVECORE_VALKEY_BIN": str(tmp_path / "nope")})
    proc = subprocess.run(
        node.command(), cwd=ROOT, env=node.env(), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("livecore: error:") and "LIVECORE_VALKEY_BIN" in lines[0]


def test_demo_banner_prints_links_and_token(tmp_path: Path) -> None:
    """--demo prints host, viewer and health URLs and a host token that works."""
    node = Node(tmp_path / "data", extra_args=["--demo"]).start()
    assert node.proc is not None
    node.stop()
    out = node.output()
    assert f"{node.url}/healthz" in out
    assert f"{node.url}/host/demo#token=" in out
    assert f"{node.url}/r/demo#token=" in out
    assert f"{node.url}/board#token=" in out and "admin token (12 h): " in out
    assert "tokens signed with kid 'node'; verified: node" in out


def test_help_documents_every_option() -> None:
    """`python -m signalling serve --help` names every option of the issue."""
    out = subprocess.run(
        [sys.executable, "-m", "signalling", "serve", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for option in ("--host", "--port", "--redis", "--data-dir", "--node-id", "--public-url",
                   "--log-level"):  # fmt: skip
        assert option in out
