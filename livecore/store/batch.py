"""Many Lua calls, one round trip: a micro-batcher for hot scripts.

Calls made during one turn of the event loop are sent together in one
non-transactional pipeline (each script still runs atomically on its own,
in submission order). On this machine that takes a script call from ~45 µs
of client work to ~9 µs. A batch is sent when the turn ends or when it
reaches ``max_batch`` calls, so the delay added is one loop turn.

A store that merges many requests of one turn into one script call (group-buy
joins) registers a *source*: at the end of a turn the batcher was woken in,
each source queues its merged calls with :meth:`ScriptBatcher.call` before
the pipeline is sent, so they ride the same round trip.

On a cluster a batch of one shard goes straight to that shard's connection in the
batcher's own task (redis-py's cluster pipeline runs each shard's part in a task of its
own and gathers them: two more loop turns per round trip, which a flash sale's opening
rush pays at 20-100 ms a turn); what the shard redirects goes through redis-py's
cluster pipeline, which follows the redirection. Scripts are loaded on every server
when the node starts (:meth:`ScriptBatcher.preload`), and a script a server lost is
loaded again once however many batches find it missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from livecore.store.client import BoundedCluster, StoreClient, shard_groups, transport_errors

log = logging.getLogger("livecore.store")

#: Errors of a lost connection (the cluster's calls are sent once more), and the pause.
LOST = (ConnectionError, TimeoutError)
RETRY_S = 0.05

#: One queued call: the script, its keys, its arguments, the caller's future.
Call = tuple[AsyncScript, Sequence[Any], Sequence[Any], asyncio.Future[Any]]


def settle(futures: Sequence[asyncio.Future[Any]], done: asyncio.Future[Any], script: str) -> None:
    """Hand each caller of a merged call its own reply from ``done`` (a list with one
    reply per caller, in order), or the call's error to every caller still waiting."""
    error = done.exception() if not done.cancelled() else asyncio.CancelledError()
    replies = done.result() if error is None else None
    if not isinstance(replies, list) or len(replies) != len(futures):
        error = error or RuntimeError(f"{script} answered {replies!r} to {len(futures)}")
        replies = [None] * len(futures)
    for future, reply in zip(futures, replies, strict=True):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(reply)


class ScriptBatcher:
    def __init__(self, redis: StoreClient, max_batch: int = 256) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._pending: list[Call] = []
        self._scheduled = False
        self.cluster = isinstance(redis, RedisCluster)
        self._running: set[asyncio.Task[None]] = set()
        self._sources: list[Callable[[], None]] = []
        #: Scripts being loaded again (by sha): the batches that find one missing share it.
        self._loading: dict[str, asyncio.Future[Any]] = {}

    async def preload(self, scripts: Iterable[AsyncScript]) -> None:
        """Load ``scripts`` on the server (on every primary of a cluster) now, so that no
        first call of a script pays a refused ``EVALSHA`` and a ``SCRIPT LOAD`` (a sale's
        first taps would: both round trips in the opening rush). A server that restarts
        or a replica that takes over later is filled on demand, as before."""
        texts = {script.sha: script.script for script in scripts}
        if not texts:
            return
        try:
            if isinstance(self.redis, RedisCluster):
                for node in self.redis.get_primaries():
                    async with self._gate(), transport_errors():
                        await node.execute_pipeline(
                            [PipelineCommand(i, "SCRIPT LOAD", text)
                             for i, text in enumerate(texts.values())]
                        )  # fmt: skip
                return
            pipe = self.redis.pipeline(transaction=False)
            for text in texts.values():
                pipe.script_load(text)
            await pipe.execute()
        except (RedisError, OSError) as exc:  # a shard down at start: loaded on demand
            log.warning("preloading %d scripts failed: %r", len(texts), exc)

    def add_source(self, drain: Callable[[], None]) -> None:
        """Call ``drain`` at the end of every turn the batcher is woken in (by
        :meth:`wake` or :meth:`call`), before it sends; ``drain`` queues its
        merged calls with :meth:`call`."""
        self._sources.append(drain)

    def wake(self) -> None:
        """Flush at the end of this loop turn (a source has calls to queue)."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def call(
        self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
    ) -> asyncio.Future[Any]:
        """Queue one script call; the future gets its reply (or its error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, keys, args, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        for drain in self._sources:
            drain()
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _send(self, batch: list[Call]) -> None:
        """On a cluster, one pipeline per shard, side by side: a shard that fails (a
        dead primary, until its replica takes over) fails only its own calls."""
        if not self.cluster:  # (isinstance against the cluster class is slow: a Protocol)
            await self._send_one(batch)
            return
        try:
            groups = shard_groups(self.redis, batch, key=lambda call: call[1])
        except Exception:  # never leave a caller's future unresolved
            groups = [batch]
        if len(groups) == 1:
            await self._send_one(batch)
        else:
            await asyncio.gather(*(self._send_one(group) for group in groups))

    async def _send_one(self, batch: list[Call]) -> None:
        """Send the batch; resolve every caller's future with its reply or error.

        On a cluster, calls that failed on a lost connection are sent once more
        after RETRY_S: redis-py's cluster client recycles its connections when it
        relearns the slot map (after a failover elsewhere), which can break a
        healthy shard's in-flight pipeline. The batched scripts are idempotent
        (a comment's ``cid``, one vote and one membership per user), as redis-py's
        own retry of a command on a lost connection already assumes."""
        try:
            replies = await self._attempt(batch)
            if self.cluster:
                lost = [i for i, r in enumerate(replies) if isinstance(r, LOST)]
                if lost:
                    await asyncio.sleep(RETRY_S)
                    again = await self._attempt([batch[i] for i in lost])
                    for i, reply in zip(lost, again, strict=True):
                        replies[i] = reply
        except LOST as exc:
            if not self.cluster:
                return self._fail(batch, exc)
            await asyncio.sleep(RETRY_S)
            try:
                replies = await self._attempt(batch)
            except Exception as again:
                return self._fail(batch, again)
        except Exception as exc:  # the connection failed: every call fails alike
            return self._fail(batch, exc)
        for (*_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        return None

    @staticmethod
    def _fail(batch: list[Call], exc: BaseException) -> None:
        for *_, future in batch:
            if not future.done():
                future.set_exception(exc)

    async def _attempt(self, batch: list[Call]) -> list[Any]:
        """One round trip: EVALSHA for every call. A script the server does not know
        yet (first use, or a restarted server) is loaded and only those calls rerun;
        registering scripts on the pipeline instead would add a SCRIPT EXISTS round
        trip to every batch, which on a busy loop costs a whole extra turn."""
        replies = await self._evalsha(batch)
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:
            for script in {id(batch[i][0]): batch[i][0] for i in missing}.values():
                await self._load(script)
            again = await self._evalsha([batch[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _load(self, script: AsyncScript) -> None:
        """``SCRIPT LOAD`` once for every batch that found ``script`` missing meanwhile."""
        loading = self._loading.get(script.sha)
        if loading is None:
            loading = asyncio.ensure_future(self.redis.script_load(script.script))
            self._loading[script.sha] = loading
            loading.add_done_callback(lambda _: self._loading.pop(script.sha, None))
        await asyncio.shield(loading)

    async def _evalsha(self, calls: list[Call]) -> list[Any]:
        if self.cluster:
            node = self._shard_of(calls)
            if node is not None:
                return await self._evalsha_on(node, calls)
        return await self._pipeline(calls)

    def _shard_of(self, calls: list[Call]) -> ClusterNode | None:
        """The primary that serves every call of ``calls`` as the client's slot map says
        now, or None (calls of several shards, a call without keys, no map). A stale map
        costs a redirection, which :meth:`_evalsha_on` hands to the cluster pipeline."""
        client = self.redis
        assert isinstance(client, RedisCluster)
        node: ClusterNode | None = None
        try:
            for _, keys, _, _ in calls:
                if not keys:
                    return None
                this = client.get_node_from_key(keys[0])
                if this is None or (node is not None and this.name != node.name):
                    return None
                node = this
        except (RedisError, RedisClusterException):
            return None
        return node

    def _gate(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A permit of the cluster client's gate (as its pipelines hold one)."""
        client = self.redis
        if isinstance(client, BoundedCluster):
            return client.gate.hold()
        return contextlib.nullcontext()

    async def _evalsha_on(self, node: ClusterNode, calls: list[Call]) -> list[Any]:
        """The calls on ``node``'s connection, in this task. A call the node redirects
        (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) or that a lost connection failed goes again
        through the cluster pipeline, which follows the redirection, relearns the slot
        map and retries, as it would have the first time."""
        commands = [PipelineCommand(i, "EVALSHA", script.sha, len(keys), *keys, *args)
                    for i, (script, keys, args, _) in enumerate(calls)]  # fmt: skip
        try:
            async with self._gate(), transport_errors():
                await node.execute_pipeline(commands)
        except (RedisError, OSError):  # not sent (or not read): the pipeline decides
            return await self._pipeline(calls)
        replies = [command.result for command in commands]
        again = [i for i, reply in enumerate(replies) if _rerouted(reply)]
        if again:
            for i, reply in zip(again, await self._pipeline([calls[i] for i in again]),
                                strict=True):  # fmt: skip
                replies[i] = reply
        return replies

    async def _pipeline(self, calls: list[Call]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for script, keys, args, _ in calls:
            # execute_command, not pipe.evalsha: redis-py's cluster pipeline
            # blocks the method but routes the command by its keys' slot.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def _rerouted(reply: Any) -> bool:
    """Whether a reply of a shard asks for the cluster pipeline's handling: a
    redirection or a cluster state (``AskError`` covers MOVED), a lost connection, or
    no reply at all; a script's own error reply is its caller's answer."""
    rerouted = (AskError, TryAgainError, ClusterDownError, ConnectionError, TimeoutError)
    if isinstance(reply, rerouted):
        return True
    return not isinstance(reply, ResponseError) and isinstance(reply, BaseException)


async def run(
    script: AsyncScript, keys: Sequence[Any], args: Sequence[Any], batcher: ScriptBatcher | None
) -> Any:
    """Run a script through the batcher when there is one, else directly."""
    if batcher is None:
        return await script(keys=keys, args=args)
    return await batcher.call(script, keys, args)
