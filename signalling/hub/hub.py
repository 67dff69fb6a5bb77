"""The node's room hub: who listens to which room, the bus, ticks and joins.

- A node subscribes to a room's shard channel only while it has connections
  in that room (and unsubscribes after ``IDLE_UNSUBSCRIBE_S`` without any).
- Events from the bus pass the room's :class:`~livecore.sequencer.Sequencer`
  (no duplicates, gaps filled from the stream, epoch changes noticed), are
  queued on the :class:`LocalRoom`, and each tick every room's queue becomes
  one frame written to all of its connections.
- Joining catches a connection up to exactly what the room has flushed, then
  activates it without yielding to the loop in between, so it neither misses
  nor repeats an event (see :meth:`Hub._catch_up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgpack
from redis.exceptions import RedisError

from livecore import tokens, wire
from livecore.comments import CommentRules
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import GroupBuySpec
from livecore.ratelimit import KeyedLimiter
from livecore.sequencer import Sequencer
from livecore.store import keys
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus, channel
from livecore.store.communities import CommunityStore
from livecore.store.counters import Counters
from livecore.store.groupbuys import GroupBuyStore
from livecore.store.media import MediaStore
from livecore.store.officers import ShareOfficerStore
from livecore.store.polls import PollStore
from signalling.context import NodeContext
from signalling.hub import commerce, snapshot
from signalling.hub.busreader import BusReader
from signalling.hub.connection import HubConnection
from signalling.hub.room import LocalRoom

log = logging.getLogger("livecore.hub")
IDLE_UNSUBSCRIBE_S = 30.0
#: Events a reconnecting client may recover; past it, it gets a fresh snapshot.
MAX_RECOVER = 2000
PING_INTERVAL_S = 20.0
IDLE_TIMEOUT_S = 70.0
MAX_CONNECTIONS = 60_000


class Hub(BusReader):
    """Room fan-out of one node; started and stopped by the app's lifespan."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.metrics = ctx.metrics
        self.batcher = ScriptBatcher(ctx.redis)
        self.bus = Bus(ctx.redis, batcher=self.batcher)
        self.polls = PollStore(ctx.redis, self.bus, self.batcher)
        self.counters = Counters(ctx.redis)
        self.groupbuys = GroupBuyStore(ctx.redis, self.bus, self.batcher)
        self.officers = ShareOfficerStore(ctx.redis)
        self.communities = CommunityStore(ctx.redis)
        self.media_store = MediaStore(ctx.redis)
        #: The node's media plane, set by the app (closes co-streams ended elsewhere).
        self.media: Any = None
        self.specs: dict[tuple[str, str], GroupBuySpec] = {}
        self._order_rooms: set[str] = set()
        self.rules = CommentRules(self.settings.comment_max_chars, self.settings.blocked_words)
        self.comment_limits = KeyedLimiter(
            ctx.clock, rate=self.settings.comment_rate, burst=self.settings.comment_burst
        )
        self.rooms: dict[str, LocalRoom] = {}
        self.connections = 0
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        self._pubsub = ctx.redis.pubsub()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._running = False

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="hub-listen"),
            loop.create_task(self._ticker(), name="hub-tick"),
            loop.create_task(self._housekeeping(), name="hub-housekeeping"),
        ]

    async def stop(self) -> None:
        self._running = False
        for room in list(self.rooms.values()):
            for conn in list(room.conns | room.joining):
                conn.close(wire.CloseCode.GOING_AWAY, "server shutting down")
            with contextlib.suppress(RedisError, OSError):
                await self.counters.report_viewers(room.id, self.settings.node_id, 0, self._now())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def note_orders(self, room_id: str) -> None:
        """Register a room that has orders, for the webhook forwarder (once per node)."""
        if room_id not in self._order_rooms and len(self._order_rooms) < 100_000:
            self._order_rooms.add(room_id)
            task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(
                self.ctx.redis.sadd(keys.ORDER_ROOMS, room_id)  # type: ignore[arg-type]
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def admit(self) -> bool:
        """Whether this node takes one more websocket."""
        return self.connections < MAX_CONNECTIONS

    def _now(self) -> int:
        return int(self.ctx.clock.time())

    # -- joining and leaving -------------------------------------------------------------

    async def join(self, conn: HubConnection, hello: wire.Message) -> None:
        """Authenticate, then send a snapshot or the recovered gap, then go live."""
        try:
            claims = tokens.verify(
                self.ctx.secret, hello.fields["token"], now=self.ctx.clock.time(),
                room=conn.room_id,
            )  # fmt: skip
            if claims.role is tokens.Role.ADMIN:
                raise LivecoreError(ErrorCode.TOKEN_WRONG_ROLE, "admin tokens do not join rooms")
        except LivecoreError as err:
            conn.close(wire.CloseCode.UNAUTHORIZED, f"{err.code}: {err.message}"[:120])
            return
        try:
            meta = await self.ctx.rooms.get(conn.room_id)
            if meta is None:
                conn.close(wire.CloseCode.ROOM_NOT_FOUND, f"room {conn.room_id} does not exist")
                return
            room = await self._room(conn.room_id)
        except (RedisError, OSError, TimeoutError):
            conn.close(wire.CloseCode.INTERNAL_ERROR, "store unavailable; retry")
            return
        if conn.closing:
            return
        conn.claims = claims
        conn.community = claims.community
        conn.room = room
        room.joining.add(conn)
        room.idle_since = None
        self.connections += 1
        self.metrics.ws_connections.inc()
        try:
            referral = None
            if hello.fields.get("ref"):
                referral = await commerce.attribute(self, conn, hello.fields["ref"])
            referred_by = referral if isinstance(referral, str) else None
            since = hello.fields.get("since")
            if since is None or not await self._recover(conn, room, since):
                await self._snapshot(
                    conn, room, meta.public(), lost=since is not None, referred_by=referred_by
                )
            if isinstance(referral, LivecoreError):
                conn.fail(referral)
        except (RedisError, OSError, TimeoutError):
            conn.close(wire.CloseCode.INTERNAL_ERROR, "store unavailable; retry")
        finally:
            room.joining.discard(conn)
            conn.joining = False

    def leave(self, conn: HubConnection) -> None:
        room = conn.room
        if room is None:
            return
        conn.room = None
        room.remove(conn)
        self.connections -= 1
        self.metrics.ws_connections.dec()
        if room.size == 0:
            room.idle_since = time.monotonic()

    async def _room(self, room_id: str) -> LocalRoom:
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        lock = self._room_locks.setdefault(room_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(room_id)
            if room is not None:
                return room
            name = channel(room_id)
            confirmed = self._confirmed[name] = asyncio.Event()
            await self._pubsub.ssubscribe(name)
            async with asyncio.timeout(5):
                await confirmed.wait()
            head = await self.bus.head(room_id)
            room = LocalRoom(room_id, Sequencer(head.epoch, head.offset))
            self.rooms[room_id] = room
            self.metrics.rooms.set(len(self.rooms))
            return room

    async def _catch_up(self, room: LocalRoom, cursor: int) -> list[dict[str, Any]] | None:
        """Events after ``cursor`` up to ``room.flushed`` (None: not all in history).

        Returns with no await after the last check of ``room.flushed``: the
        caller activates the connection right away, before the next batch.
        """
        out: list[dict[str, Any]] = []
        while cursor < room.flushed:
            entries = await self.bus.history(room.id, cursor, room.flushed, limit=1000)
            if not entries or entries[0][0] != cursor + 1 or len(out) > MAX_RECOVER:
                return None
            for offset, payload in entries:
                out.append(wire.encode_event(offset, msgpack.unpackb(payload, raw=False)))
            cursor = entries[-1][0]
        return out

    def _activate(self, conn: HubConnection, room: LocalRoom) -> None:
        if conn.room is room and not conn.closing:
            room.activate(conn)

    async def _recover(self, conn: HubConnection, room: LocalRoom, since: dict[str, Any]) -> bool:
        """Replay what the client missed; False when the gap cannot be replayed."""
        assert conn.claims is not None
        head = await self.bus.head(room.id)
        offset = int(since["offset"])
        if since["epoch"] != head.epoch or offset > head.offset or offset + 1 < head.first:
            return False
        for _ in range(40):  # the client may be ahead of this node by a few events
            if offset <= room.flushed:
                break
            await asyncio.sleep(self.settings.tick_ms / 1000)
        else:
            return False
        events = await self._catch_up(room, offset)
        if events is None:
            return False
        conn.send(
            wire.encode(
                {"t": wire.ServerType.RECOVERED.value, "epoch": room.epoch,
                 "offset": room.flushed, "events": events,
                 "st": snapshot.live_state(room, conn.claims, conn.community)}
            )
        )  # fmt: skip
        self._activate(conn, room)
        self.metrics.ws_recoveries.labels("recovered").inc()
        return True

    async def _snapshot(
        self,
        conn: HubConnection,
        room: LocalRoom,
        meta: dict[str, Any],
        *,
        lost: bool,
        referred_by: str | None = None,
    ) -> None:
        assert conn.claims is not None
        state = await snapshot.read(self, room.id, conn.claims, conn.community)
        events = await self._catch_up(room, state.offset) if state.offset < room.flushed else []
        if events is None:  # history moved too far while we read: start over once
            state = await snapshot.read(self, room.id, conn.claims, conn.community)
            events = await self._catch_up(room, state.offset) or []
        message = snapshot.build(state, events, room, meta, conn.claims)
        message["referred_by"] = referred_by
        if lost:
            message["recovered"] = False
            self.metrics.ws_recoveries.labels("lost").inc()
        conn.send(wire.encode(message))
        self._activate(conn, room)

    # -- ticks -------------------------------------------------------------------------

    async def _ticker(self) -> None:
        """Flush every room once per tick.

        A flush that takes longer than the tick (tens of thousands of viewers)
        is followed at once by the next, after a pause of a quarter of its
        length that leaves the loop time for reads, the bus and housekeeping:
        each viewer is then written every ~1.25 flushes and the core stays
        under ~80% busy with writes.
        """
        tick = self.settings.tick_ms / 1000
        pause = tick
        while self._running:
            await asyncio.sleep(pause)
            started = time.perf_counter()
            for room in list(self.rooms.values()):
                try:
                    self._flush(room)
                except Exception:  # a bug must not stop every room's broadcasts
                    log.exception("flushing room %s failed", room.id)
            spent = time.perf_counter() - started
            self.metrics.flush_seconds.observe(spent)
            pause = max(tick - spent, spent / 4)

    def _flush(self, room: LocalRoom) -> None:
        """Write the room's batch to every connection (one frame, the same bytes),
        then each changed group's frame to its community and the hosts.

        This is the hot loop of the node (one iteration per viewer per tick),
        so it talks to the transports directly instead of through
        ``HubConnection.write``; the checks are the same.
        """
        frame = room.take_batch()
        sends = room.group_frames(time.monotonic()) if room.dirty_groups else []
        if frame is not None:
            sends.insert(0, (frame, room.conns))
        limit = self.settings.ws_send_buffer
        slow: set[HubConnection] = set()
        written = 0
        for data, targets in sends:
            for conn in targets:
                transport = conn.transport
                if transport is None or conn.closing:
                    continue
                if transport.get_write_buffer_size() > limit:
                    slow.add(conn)
                    continue
                transport.write(data)
                written += 1
        for conn in slow:
            self.metrics.ws_slow_consumers.inc()
            conn.close(wire.CloseCode.SLOW_CONSUMER, "send buffer full; reconnect and recover")
        self.metrics.ws_frames_out.inc(written)

    async def _housekeeping(self) -> None:
        """Likes and tallies (0.25 s), then viewers, head checks, poll closing (1 s)."""
        beat = 0
        while self._running:
            await asyncio.sleep(0.25)
            beat += 1
            for room in list(self.rooms.values()):
                try:
                    await self._publish_counters(room)
                    await commerce.publish_groups(self, room)
                    if beat % 4 == 0:
                        await self._room_second(room)
                except (RedisError, OSError) as exc:
                    log.warning("housekeeping of room %s failed: %s", room.id, exc)
                except Exception:  # keep the loop alive; the log has the bug
                    log.exception("housekeeping of room %s failed", room.id)
            if beat % 4 == 0:
                try:
                    await commerce.sweep_deadlines(self)
                except (RedisError, OSError) as exc:
                    log.warning("group-buy deadline sweep failed: %s", exc)
                except Exception:
                    log.exception("group-buy deadline sweep failed")
            if beat % int(PING_INTERVAL_S * 4) == 0:
                self._ping_all()

    async def _publish_counters(self, room: LocalRoom) -> None:
        if room.local_likes:
            taps, room.local_likes = room.local_likes, 0
            total = await self.counters.add_likes(room.id, taps)
            room.set_likes(total)
            await self.bus.ephemeral(room.id, msgpack.packb({"k": "likes", "n": total}))
        while room.dirty_polls:
            poll = room.dirty_polls.pop()
            tally = await self.polls.tally(room.id, poll)
            if tally is not None:
                counts, version = tally
                room.set_tally(poll, version, counts)
                message = {"k": "tally", "poll": poll, "v": version, "counts": counts}
                await self.bus.ephemeral(room.id, msgpack.packb(message))

    async def _room_second(self, room: LocalRoom) -> None:
        now = self._now()
        total = await self.counters.report_viewers(room.id, self.settings.node_id, room.size, now)
        room.set_viewers(total)
        room.set_leaderboard(await self.officers.leaderboard(room.id))
        head = await self.bus.head(room.id)
        if head.epoch != room.seq.epoch:
            self._resync(room)
            return
        if room.seq.behind(head.offset) is not None:
            await self._fill(room)
        for poll in await self.polls.due(room.id, now):
            await self.polls.close(room.id, poll, now)
        if room.size == 0 and room.idle_since is not None:
            if time.monotonic() - room.idle_since > IDLE_UNSUBSCRIBE_S:
                self.rooms.pop(room.id, None)
                self.metrics.rooms.set(len(self.rooms))
                await self.counters.report_viewers(room.id, self.settings.node_id, 0, now)
                await self._unsubscribe(room.id)

    def _ping_all(self) -> None:
        now = asyncio.get_running_loop().time()
        for room in list(self.rooms.values()):
            for conn in list(room.conns):
                if now - conn.last_heard > IDLE_TIMEOUT_S:
                    conn.close(wire.CloseCode.GOING_AWAY, "no traffic; connection presumed dead")
                elif conn.proto.state.name == "OPEN":
                    conn.proto.send_ping(b"")
                    conn._flush_proto()

    # -- messages ----------------------------------------------------------------------

    async def handle(self, conn: HubConnection, message: wire.Message) -> None:
        from signalling.hub import handlers

        self.metrics.ws_messages_in.labels(message.type.value).inc()
        try:
            await handlers.dispatch(self, conn, message)
        except LivecoreError as err:
            conn.fail(err, message)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("store error on %s: %r", message.type.value, exc)
            unavailable = LivecoreError(ErrorCode.STORE_UNAVAILABLE, "store unavailable; retry")
            conn.fail(unavailable, message)
