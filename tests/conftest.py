"""Shared fixtures: one real Valkey for the session, real nodes as subprocesses."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from livecore.cli.embedded import EmbeddedValkey
from tests.helpers import TEST_SECRET, Node, free_port


@pytest.fixture(autouse=True)
def _test_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECORE_SECRET", TEST_SECRET)


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """A real Valkey (the bundled binary) on a loopback TCP port, for the whole session."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), tcp_port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey_server: EmbeddedValkey) -> str:
    """URL of the session Valkey, emptied before each test."""
    url = valkey_server.tcp_url
    redis.Redis.from_url(url).flushall()
    return url


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def secret() -> bytes:
    return TEST_SECRET.encode()


@pytest.fixture
def node(tmp_path: Path, redis_url: str) -> Iterator[Node]:
    """A node on the session Valkey."""
    started = Node(tmp_path / "node", redis_url=redis_url).start()
    yield started
    started.stop()


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
