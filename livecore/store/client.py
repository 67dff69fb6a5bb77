"""The store client: one Valkey/Redis, or a Valkey/Redis Cluster.

``redis://``, ``rediss://`` and ``unix://`` URLs give redis-py's client on a
bounded blocking pool; ``redis+cluster://`` (``rediss+cluster://`` with TLS)
gives redis-py's cluster client, which follows MOVED/ASK redirections, learns
the slot map again after a failover and routes sharded pub/sub
(SSUBSCRIBE/SPUBLISH) to the shard that owns each room's channel. Every key
of a room carries the hash tag ``{room}``, so each script and transaction of a
room runs on one shard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot

#: Either client: both speak the commands the store adapters use.
StoreClient: TypeAlias = Redis | RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


def describe(url: str) -> str:
    """``valkey`` or ``cluster`` (the kind of store a URL names), for logs and benchmarks."""
    return "cluster" if is_cluster_url(url) else "valkey"


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> StoreClient:
    """A client for ``url``, with at most ``max_connections`` per server.

    A single server's pool makes callers wait up to ``timeout_s`` for a free
    connection. The cluster client retries a command on connection errors and
    redirections (up to 6 times over about 3 s) while a replica takes over.
    """
    scheme, _, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        client = BoundedCluster.from_url(
            f"{CLUSTER_SCHEMES[scheme]}://{rest}",
            max_connections=max_connections,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=10,
        )
        # One connection per shard stays free for the bus's sharded pub/sub.
        assert isinstance(client, BoundedCluster)
        client.gate = Gate(max(1, max_connections - 1))
        return client
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout_s, health_check_interval=10
    )
    return Redis(connection_pool=pool)


async def open_store(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> StoreClient:
    """:func:`connect`, and for a cluster learn its slot map before the first command
    (redis-py's cluster client, initialised lazily by a burst of concurrent first
    commands, can break connections it is still opening)."""
    client = connect(url, max_connections=max_connections, timeout_s=timeout_s)
    if isinstance(client, RedisCluster):
        await client.initialize()
    return client


#: Set while a task holds a permit of a :class:`Gate` (a redirected command that
#: a pipeline re-sends one by one must not wait for a second permit).
_holding: ContextVar[bool] = ContextVar("livecore_store_gate", default=False)


class Gate:
    """At most ``limit`` commands (or pipelines) of a cluster client in flight.

    redis-py's cluster client fails with ``MaxConnectionsError`` when a shard's
    pool is exhausted; behind this gate callers wait for a free slot instead, as
    they do on a single server's blocking pool (bounded either way)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if _holding.get():
            yield
            return
        async with self._semaphore:
            token = _holding.set(True)
            try:
                yield
            finally:
                _holding.reset(token)


class BoundedCluster(RedisCluster):
    """redis-py's cluster client behind a :class:`Gate`."""

    gate: Gate = Gate(64)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate.hold():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)
        return BoundedPipeline(self, transaction)  # type: ignore[abstract]


class BoundedPipeline(ClusterPipeline):
    """A cluster pipeline that holds one permit of its client's gate while it runs."""

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client = self.cluster_client
        gate = client.gate if isinstance(client, BoundedCluster) else Gate(1)
        async with gate.hold():
            return await super().execute(raise_on_error, allow_redirections)


def by_slot(client: StoreClient, names: Sequence[str]) -> list[list[str]]:
    """``names`` grouped so that each group may go in one multi-key command: all
    of them for one server, those of one hash slot each on a cluster."""
    if not isinstance(client, RedisCluster):
        return [list(names)] if names else []
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(key_slot(name.encode()), []).append(name)
    return list(groups.values())
