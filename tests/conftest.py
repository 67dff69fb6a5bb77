"""Shared fixtures: one real Valkey for the session, real nodes as subprocesses.

Tests that take ``redis_url`` run on the session's single Valkey. Modules
marked ``both_stores`` run each test twice: on that Valkey and on a real local
Valkey Cluster of 3 primaries (started once, the first time a test needs it).
``LIVECORE_TEST_STORE=cluster`` runs every test on the cluster instead.
A module's browser tests share one headless Chromium (``browser``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
import redis
import redis.asyncio

from livecore.store.client import StoreClient, cluster_seeds, is_cluster_url, open_store
from livecore.valkey.cluster import LocalCluster
from livecore.valkey.embedded import EmbeddedValkey
from tests.helpers import TEST_SECRET, Node, free_port
from tests.schedule import longest_first

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture(autouse=True)
def _test_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVECORE_SECRET", TEST_SECRET)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for a module's tests (their loop is the module's: such
    modules mark themselves ``asyncio(loop_scope="module")``); without Chromium the
    test is skipped, or fails under CI=true."""
    from tests.browser import launch  # Playwright only where a browser is wanted

    async with launch() as b:
        yield b


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedValkey]:
    """A real Valkey (the bundled binary) on a loopback TCP port, for the whole session."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"), tcp_port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Valkey Cluster of 3 primaries on loopback, for the whole session."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3)
    cluster.start()
    yield cluster
    cluster.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_stores: run on a single Valkey and on a 3-primary Valkey Cluster"
    )


#: Modules whose every test runs on both stores in `make test`: the store
#: adapters and the hub's gap, commerce and room-lifecycle tests. Elsewhere the
#: integration tests of each store guarantee (recovery without gaps or
#: duplicates, exact counts across nodes, formation exactly once, orders at
#: least once) carry the ``both_stores`` mark.
BOTH_STORES = (
    "tests/livecore/store/",
    "tests/signalling/hub/test_gaps.py",
    "tests/signalling/hub/test_commerce_rules.py",
    "tests/signalling/services/test_lifecycle.py",
)
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    longest_first(items)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" not in metafunc.fixturenames:
        return
    forced = os.environ.get("LIVECORE_TEST_STORE")
    where = metafunc.definition.path.relative_to(ROOT).as_posix()
    if forced:
        kinds = [forced]
    elif where.startswith(BOTH_STORES) or metafunc.definition.get_closest_marker("both_stores"):
        kinds = ["valkey", "cluster"]
    else:
        kinds = ["valkey"]
    metafunc.parametrize("store_kind", kinds)


def flush(url: str) -> None:
    """Empty the store (every primary of a cluster)."""
    if is_cluster_url(url):
        seeds, password = cluster_seeds(url.partition("://")[2])
        for host, port in seeds:
            node = redis.Redis(host=host, port=port, password=password)
            if node.execute_command("ROLE")[0] == b"master":
                node.flushall()
            node.close()
    else:
        redis.Redis.from_url(url).flushall()


@pytest.fixture
def redis_url(store_kind: str, request: pytest.FixtureRequest) -> str:
    """URL of the session's Valkey (or cluster, for ``store_kind`` cluster), emptied first."""
    if store_kind == "cluster":
        url = request.getfixturevalue("valkey_cluster").url
    else:
        url = request.getfixturevalue("valkey_server").tcp_url
    flush(url)
    return str(url)


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[StoreClient]:
    client = await open_store(redis_url)
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
