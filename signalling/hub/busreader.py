"""The bus side of the hub: one pub/sub connection, events in order, state coalesced.

On a cluster, redis-py's cluster pub/sub holds one connection per shard that
owns a subscribed room's channel (and moves a channel to its new owner after
a failover or a slot migration); the reader reads each of them in its own
loop, so that a quiet shard never delays another's messages.

A room is opened (subscribed to its shard channel, positioned at the head
of its history) while this node has connections in it. Events of a room
pass its sequencer (duplicates dropped, gaps filled from the stream, new
epochs noticed) into its :class:`~signalling.hub.room.LocalRoom`; ephemeral
state (likes, tallies, group progress, co-stream ends) is merged by version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub
from redis.exceptions import RedisError

from livecore import killswitch, wire
from livecore.killswitch import Kill
from livecore.sequencer import Sequencer, Verdict
from livecore.store import control
from livecore.store.bus import Bus, channel, parse_channel_message
from signalling.hub.room import MAX_BATCH_EVENTS, LocalRoom
from signalling.node.background import BackgroundTasks
from signalling.node.keyedlocks import KeyedLocks
from signalling.node.metrics import Metrics

log = logging.getLogger("livecore.hub")
#: Events a gap fill may fetch at once.
MAX_FILL = 2000
#: Seconds to wait for Valkey to confirm a subscription.
SUBSCRIBE_TIMEOUT_S = 5


class BusReader:
    """Reads the rooms' shard channels for the hub.

    ``rooms`` is the hub's map of open rooms (shared, not copied); ``flush``
    writes a room's batch at once (used when a batch grows past
    MAX_BATCH_EVENTS); ``on_media_end(room, user)`` closes a co-stream ended
    on another node; ``on_kill(kill)`` closes what a revocation or a room's end
    hits (the nodes' control channel, subscribed by :meth:`listen_control`).
    """

    def __init__(
        self,
        pubsub: PubSub,
        rooms: dict[str, LocalRoom],
        bus: Bus,
        metrics: Metrics,
        flush: Callable[[LocalRoom], None],
    ) -> None:
        self.pubsub = pubsub
        self.rooms = rooms
        self.bus = bus
        self.metrics = metrics
        self.flush = flush
        self.on_media_end: Callable[[str, str], Coroutine[Any, Any, None]] | None = None
        self.on_kill: list[Callable[[Kill], None]] = []
        self.running = False
        #: Monotonic time of the read loop's last turn (readiness).
        self.last_beat = time.monotonic()
        self._locks = KeyedLocks()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._tasks = BackgroundTasks(log)

    # -- rooms -------------------------------------------------------------------

    async def open(self, room_id: str) -> LocalRoom:
        """The room's local view, subscribing to its channel the first time."""
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        async with self._locks.hold(room_id):
            room = self.rooms.get(room_id)
            if room is not None:
                return room
            name = channel(room_id)
            confirmed = self._confirmed[name] = asyncio.Event()
            try:
                await self.pubsub.ssubscribe(name)
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                    await confirmed.wait()
            finally:
                if self._confirmed.get(name) is confirmed:  # timed out or failed
                    del self._confirmed[name]
            head = await self.bus.head(room_id)
            room = LocalRoom(room_id, Sequencer(head.epoch, head.offset))
            self.rooms[room_id] = room
            self.metrics.rooms.set(len(self.rooms))
            return room

    async def listen_control(self) -> None:
        """Subscribe to the nodes' control channel (once, when the hub starts; the
        client subscribes again after a reconnect, as it does the rooms')."""
        name = control.CHANNEL
        confirmed = self._confirmed[name] = asyncio.Event()
        try:
            await self.pubsub.ssubscribe(name)
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                await confirmed.wait()
        finally:
            if self._confirmed.get(name) is confirmed:
                del self._confirmed[name]

    def drop(self, room_id: str) -> None:
        """Forget a room and leave its channel."""
        self.rooms.pop(room_id, None)
        self.metrics.rooms.set(len(self.rooms))
        self._tasks.spawn(self.unsubscribe(room_id), name=f"unsubscribe-{room_id}")

    async def unsubscribe(self, room_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.pubsub.sunsubscribe(channel(room_id))

    def sizes(self) -> dict[str, int]:
        """Entries of the reader's per-room structures (for /metrics and tests)."""
        return {"reader_locks": len(self._locks), "reader_confirming": len(self._confirmed),
                "reader_tasks": len(self._tasks)}  # fmt: skip

    async def aclose(self) -> None:
        await self._tasks.cancel_all()
        with contextlib.suppress(RedisError, OSError):
            await self.pubsub.aclose()

    # -- the bus -------------------------------------------------------------------

    async def run(self) -> None:
        """Read the channels until ``running`` is cleared."""
        if isinstance(self.pubsub, ClusterPubSub):
            await self._run_shards(self.pubsub)
            return
        while self.running:
            self.last_beat = time.monotonic()
            if not self.pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await self.pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("bus connection lost (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self.on_message(message)

    async def _run_shards(self, pubsub: ClusterPubSub) -> None:
        """One reading loop per shard connection, started and stopped as the cluster
        pub/sub opens and closes them (at most one per primary)."""
        readers: dict[str, asyncio.Task[None]] = {}
        try:
            while self.running:
                self.last_beat = time.monotonic()
                names = set(pubsub.node_pubsub_mapping)
                for name in list(readers):
                    if name not in names or readers[name].done():
                        readers.pop(name).cancel()
                for name in names - readers.keys():
                    readers[name] = asyncio.get_running_loop().create_task(
                        self._read_shard(pubsub, name), name=f"bus-{name}"
                    )
                await asyncio.sleep(0.05)
        finally:
            for task in readers.values():
                task.cancel()
            await asyncio.gather(*readers.values(), return_exceptions=True)

    async def _read_shard(self, pubsub: ClusterPubSub, name: str) -> None:
        while self.running and name in pubsub.node_pubsub_mapping:
            node = pubsub.cluster.get_node(node_name=name)
            if node is None:  # left the topology; its channels move to the new owner
                await asyncio.sleep(0.2)
                continue
            try:
                message = await pubsub.get_sharded_message(timeout=1.0, target_node=node)
            except (RedisError, OSError) as exc:
                log.warning("bus connection to %s lost (%s); reconnecting", name, exc)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self.on_message(message)

    def on_message(self, message: dict[str, Any]) -> None:
        name = message["channel"].decode() if isinstance(message["channel"], bytes) else ""
        if message["type"] == "ssubscribe":
            event = self._confirmed.pop(name, None)
            if event is not None:
                event.set()
            return
        if message["type"] != "smessage":
            return
        if name == control.CHANNEL:
            kill = killswitch.decode(message["data"])
            if kill is not None:
                for callback in self.on_kill:
                    try:
                        callback(kill)
                    except Exception:  # one part's failure must not stop the bus
                        log.exception("kill notice %r not applied", kill)
            return
        room = self.rooms.get(name.split("{", 1)[-1].split("}", 1)[0])
        if room is None:
            return
        parsed = parse_channel_message(message["data"])
        if isinstance(parsed, tuple):
            self.on_event(room, *parsed)
        elif isinstance(parsed, dict):
            self.on_state(room, parsed)

    def on_event(self, room: LocalRoom, epoch: str, offset: int, payload: bytes) -> None:
        verdict = room.seq.push(epoch, offset, payload)
        if verdict is Verdict.RESET:
            self.resync(room)
        elif verdict is Verdict.GAP:
            self._tasks.spawn(self.fill(room), name=f"fill-{room.id}")
        room.add_events(room.seq.take())
        if len(room.events) >= MAX_BATCH_EVENTS:
            self.flush(room)

    def on_state(self, room: LocalRoom, state: dict[str, Any]) -> None:
        kind = state.get("k")
        if kind == "likes" and isinstance(state.get("n"), int):
            room.set_likes(state["n"])
        elif kind == "tally" and isinstance(state.get("v"), int):
            room.set_tally(str(state.get("poll")), state["v"], list(state.get("counts", [])))
        elif kind == "media_end" and self.on_media_end is not None:
            user = str(state.get("user", ""))
            self._tasks.spawn(self.on_media_end(room.id, user), name=f"media-end-{room.id}")
        elif kind == "flash" and isinstance(state.get("v"), int):
            state.pop("k")
            room.set_flash(state)
        elif kind == "coupon" and isinstance(state.get("v"), int):
            state.pop("k")
            room.set_coupon(str(state.pop("cp", "")), state)
        elif kind == "group" and isinstance(state.get("v"), int):
            gb, group = str(state.pop("gb", "")), str(state.pop("g", ""))
            state.pop("k")
            room.set_group(gb, group, state)

    async def fill(self, room: LocalRoom) -> None:
        """Fetch gaps from the room's history until none is left (pub/sub dropped
        something). A gap longer than one fetch is fetched in turns of MAX_FILL,
        each delivered (and flushed past MAX_BATCH_EVENTS) before the next; a gap
        the history no longer holds the start of resyncs the room's clients."""
        if room.seq.gap is None:
            return
        self.metrics.bus_gaps.inc()
        while (gap := room.seq.gap) is not None and self.rooms.get(room.id) is room:
            try:
                entries = await self.bus.history(room.id, gap[0], gap[1], limit=MAX_FILL)
            except (RedisError, OSError):
                room.seq.gap = None  # housekeeping retries from the head check
                return
            if not entries or entries[0][0] != gap[0] + 1:
                self.resync(room)  # trimmed away: what was missed cannot be replayed
                return
            room.seq.fill(entries)
            room.add_events(room.seq.take())
            if len(room.events) >= MAX_BATCH_EVENTS:
                self.flush(room)
            if room.seq.gap == gap:  # no progress: do not spin
                self.resync(room)
                return

    def resync(self, room: LocalRoom) -> None:
        """The room's history was reset: every client must take a fresh snapshot."""
        log.warning("room %s history reset (epoch changed); clients resync", room.id)
        for conn in list(room.conns | room.joining):
            conn.close(wire.CloseCode.RESYNC, "room history reset; reconnect")
        self.drop(room.id)
