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
import urllib.parse
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeAlias, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot
from redis.exceptions import (
    ConnectionError,
    RedisClusterException,
    RedisError,
)

T = TypeVar("T")

#: Either client: both speak the commands the store adapters use.
StoreClient: TypeAlias = Redis | RedisCluster

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a cluster (``redis+cluster://`` or ``rediss+cluster://``)."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


def describe(url: str) -> str:
    """``valkey`` or ``cluster`` (the kind of store a URL names), for logs and benchmarks."""
    return "cluster" if is_cluster_url(url) else "valkey"


def cluster_seeds(rest: str) -> tuple[list[tuple[str, int]], str | None]:
    """``[:password@]host:port[,host:port...]`` → the seed nodes and the password.

    Any one reachable seed is enough to learn the whole cluster; list several so
    that a node still starts while one of them is down."""
    credentials, _, hosts = rest.rpartition("@")
    password = urllib.parse.unquote(credentials.partition(":")[2]) if credentials else None
    seeds = []
    for item in hosts.split("/")[0].split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster seed {item!r} is not host:port")
        seeds.append((host.strip("[]"), int(port)))
    return seeds, password or None


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> StoreClient:
    """A client for ``url``, with at most ``max_connections`` per server.

    A single server's pool makes callers wait up to ``timeout_s`` for a free
    connection. The cluster client retries a command on connection errors and
    redirections (up to 6 times over about 3 s) while a replica takes over.
    """
    scheme, _, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        seeds, password = cluster_seeds(rest)
        client = BoundedCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in seeds],
            password=password,
            ssl=scheme == "rediss+cluster",
            max_connections=max_connections,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=6),
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            health_check_interval=10,
        )
        # One connection per shard stays free for the bus's sharded pub/sub.
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


#: Pause before a cluster primary's ping is tried again on a new connection.
PING_RETRY_S = 0.05


async def answers(client: StoreClient) -> bool:
    """Whether the store answers a PING: the server, or at least one primary of a
    cluster (with one shard failing over, the node still serves the other shards'
    rooms; that shard's requests are refused ``store_unavailable`` meanwhile)."""
    if not isinstance(client, RedisCluster):
        return bool(await client.ping())

    async def one(node: ClusterNode) -> bool:
        # Twice: a live primary's connection may have been closed under the ping by
        # the client relearning its slot map (after another primary died).
        for attempt in range(2):
            try:
                # On the node's own connection: the client-level command would first
                # relearn the slot map, which fails while the dead primary is in it.
                async with transport_errors():
                    return bool(await node.execute_command("PING"))
            except (RedisError, OSError):  # ConnectionError is a RedisError
                if attempt == 0:
                    await asyncio.sleep(PING_RETRY_S)
        return False

    # The first that answers decides: a dead primary's ping waits out its retries.
    pings = [asyncio.ensure_future(one(n)) for n in client.get_primaries()]
    try:
        for done in asyncio.as_completed(pings):
            if await done:
                return True
        return False
    finally:
        for ping in pings:
            ping.cancel()


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


@contextlib.asynccontextmanager
async def transport_errors() -> AsyncIterator[None]:
    """A connection closed under a command while the cluster client relearns its
    slot map (after a failover) surfaces from redis-py as a ``RuntimeError`` or
    ``AttributeError`` of the transport; callers see it as what it is, a lost
    connection (``ConnectionError``: refused ``store_unavailable``, retried)."""
    try:
        yield
    except (RuntimeError, AttributeError) as exc:
        raise ConnectionError(f"store connection closed under a command: {exc}") from exc


class BoundedCluster(RedisCluster):
    """redis-py's cluster client behind a :class:`Gate`."""

    gate: Gate = Gate(64)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate.hold(), transport_errors():
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
        async with gate.hold(), transport_errors():
            return await super().execute(raise_on_error, allow_redirections)


def shard_groups(
    client: StoreClient, items: Sequence[T], key: Callable[[T], Sequence[Any]]
) -> list[list[T]]:
    """``items`` grouped by the shard that serves their keys (``key(item)``, of one
    slot): one group for a single server."""
    if not isinstance(client, RedisCluster) or len(items) < 2:
        return [list(items)]
    groups: dict[str, list[T]] = {}
    for item in items:
        names = key(item)
        try:
            node = client.get_node_from_key(names[0]) if names else None
            shard = node.name if node is not None else ""
        except (RedisError, RedisClusterException):  # no slot map yet, or being relearnt
            shard = ""
        groups.setdefault(shard, []).append(item)
    return list(groups.values())


def by_slot(client: StoreClient, names: Sequence[str]) -> list[list[str]]:
    """``names`` grouped so that each group may go in one multi-key command: all
    of them for one server, those of one hash slot each on a cluster."""
    if not isinstance(client, RedisCluster):
        return [list(names)] if names else []
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(key_slot(name.encode()), []).append(name)
    return list(groups.values())
