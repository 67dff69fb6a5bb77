"""The node's room hub: composition only.

Owns the map of open rooms and starts and stops the parts that share it:

- :mod:`~signalling.hub.busreader`: a room's shard channel while this node
  has connections in it, events in order into its LocalRoom;
- :mod:`~signalling.hub.ticker`: each tick, every room's batch as one frame
  written to all of its connections;
- :mod:`~signalling.hub.housekeeping`: counters, viewers, deadlines, pings;
- :mod:`~signalling.hub.kills`: revocations close the websockets they hit;
- :mod:`~signalling.hub.joins`: hello -> snapshot or recovery -> live;
- :mod:`~signalling.hub.routes`: every later message to its handler, with a
  :class:`~signalling.hub.context.Context` (never the hub).

Nothing imports this module but the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.killswitch import Kill
from livecore.tokens import Role
from signalling.hub import routes
from signalling.hub.busreader import BusReader
from signalling.hub.connection import HubConnection
from signalling.hub.context import Context, Services
from signalling.hub.housekeeping import Housekeeper
from signalling.hub.joins import Joiner
from signalling.hub.kills import close_hit
from signalling.hub.room import LocalRoom
from signalling.hub.ticker import Ticker
from signalling.hub.traffic import NoTraffic, TrafficRecorder
from signalling.node.context import NodeContext

log = logging.getLogger("livecore.hub")


class Hub:
    """Room fan-out of one node; started and stopped by the app's lifespan.

    It is the :class:`~signalling.hub.connection.Channel` the websockets talk to.
    """

    def __init__(self, ctx: NodeContext) -> None:
        self.settings = ctx.settings
        self.metrics = ctx.metrics
        self.stores = ctx.stores
        self.node = Services(ctx.stores, ctx.settings, ctx.clock, secret=ctx.ring)
        self.rooms: dict[str, LocalRoom] = {}
        self.ticker = Ticker(self.rooms, ctx.settings, ctx.metrics)
        self.reader = BusReader(
            ctx.redis.pubsub(), self.rooms, ctx.stores.bus, ctx.metrics, self.ticker.flush
        )
        self.housekeeper = Housekeeper(self.rooms, self.node, self.reader)
        self.joiner = Joiner(self.node, ctx.ring, self.reader, ctx.metrics)
        self.ticker.on_late = self.joiner.admission.observe
        s = ctx.settings
        self.traffic: NoTraffic = (
            TrafficRecorder(s.record_trace, ctx.clock, keep_text=s.record_text)
            if s.record_trace is not None
            else NoTraffic()
        )
        self.housekeeper.on_room_idle = self.traffic.room_idle
        self.reader.on_kill.append(self._kill)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        parts = (self.reader, self.ticker, self.housekeeper)
        for part in parts:
            part.running = True
        self._tasks = [
            loop.create_task(self.reader.run(), name="hub-listen"),
            loop.create_task(self.ticker.run(), name="hub-tick"),
            loop.create_task(self.housekeeper.run(), name="hub-housekeeping"),
        ]
        await self.reader.listen_control()  # revocations and room ends from every node

    async def stop(self) -> None:
        self.reader.running = self.ticker.running = self.housekeeper.running = False
        node_id = self.settings.node_id
        for room in list(self.rooms.values()):
            for conn in list(room.conns | room.joining):
                conn.close(wire.CloseCode.GOING_AWAY, "server shutting down")
            with contextlib.suppress(RedisError, OSError):
                await self.stores.counters.report_viewers(room.id, node_id, 0, self.node.now())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.joiner.facts.cancel_all()
        await self.reader.aclose()
        await self.traffic.aclose()

    def _kill(self, kill: Kill) -> None:
        close_hit(self.rooms, kill, self.metrics)

    # -- the Channel of every websocket ------------------------------------------------

    def admit(self, conn: HubConnection, address: str) -> str | None:
        return self.joiner.admit(conn, address)

    async def join(self, conn: HubConnection, hello: wire.Message) -> None:
        await self.joiner.join(conn, hello)
        if conn.context is not None and conn.claims is not None and not conn.closing:
            resumed = hello.fields.get("since") is not None
            self.traffic.joined(conn.room_id, conn.claims, conn.community, resumed)

    def leave(self, conn: HubConnection) -> None:
        if conn.room is not None and conn.claims is not None:
            self.traffic.left(conn.room_id, conn.claims, conn.community)
        self.joiner.leave(conn)

    def sizes(self) -> dict[str, int]:
        """Entries of every per-room, per-user and per-key structure of the hub."""
        node = self.node
        return {
            "rooms": len(self.rooms),
            "ws_connections": self.joiner.connections,
            **self.joiner.sizes(),
            **self.reader.sizes(),
            "comment_limits": len(node.comment_limits),
            "message_limits": len(node.message_limits),
            "costly_limits": len(node.costly_limits),
            "specs": len(node.specs),
            "spec_reads": len(node.spec_reads),
            "order_rooms": len(node.orders),
        }

    @property
    def connections(self) -> int:
        return self.joiner.connections

    async def handle(self, conn: HubConnection, message: wire.Message) -> None:
        """Run a joined connection's message; refusals become ``error`` answers."""
        ctx = self._admitted(conn, message)
        if ctx is not None:
            await self._run(conn, ctx, message)

    def handle_now(
        self, conn: HubConnection, message: wire.Message
    ) -> Coroutine[Any, Any, None] | None:
        """The message of an idle connection: checked, and answered here when its type
        has a quick handler that needs nothing it must wait for (a tap of a sale this
        node knows sold out); None when it is done, else the rest to run in a task."""
        ctx = self._admitted(conn, message)
        if ctx is None:
            return None
        quick = routes.QUICK.get(message.type)
        # (a sender of the wrong role goes the task's way, whose dispatch refuses it)
        if quick is not None and ctx.claims.role in routes.ROUTES[message.type][0]:
            answer = quick(ctx, message)
            if answer is True:
                self._accepted(conn, ctx, message)
                return None
            if isinstance(answer, LivecoreError):
                conn.fail(answer, message, counted=answer.code not in routes.OUTCOMES)
                return None
        return self._run(conn, ctx, message)

    def _admitted(self, conn: HubConnection, message: wire.Message) -> Context | None:
        """The connection's context if the message may run (counted, token current, within
        the user's budget); else None, the connection closed or the message refused."""
        self.metrics.message_in(message.type.value)
        ctx = conn.context
        assert ctx is not None, "messages are handled only after the hello"
        if ctx.claims.expires_at <= self.node.clock.time():  # the timer may lag a little
            conn.close(wire.CloseCode.TOKEN_EXPIRED, "token expired; reconnect with a new one")
            return None
        # The room's host is held to its connection's own budget only (as it is exempt
        # from the comment limit): running a live means bursts of pins and answers.
        cheap = message.type in routes.CHEAP
        limits = self.node.message_limits if cheap else self.node.costly_limits
        if ctx.claims.role is not Role.HOST and not limits.allow(ctx.user):
            self.metrics.refusals.labels("ws_user_cheap" if cheap else "ws_user_costly").inc()
            kind = "messages" if cheap else f"{message.type.value} messages"
            conn.fail(LivecoreError(ErrorCode.RATE_LIMITED, f"too many {kind}; slow down"), message)
            return None
        return ctx

    def _accepted(self, conn: HubConnection, ctx: Context, message: wire.Message) -> None:
        """What follows a message its handler accepted."""
        if message.type not in routes.FOLLOWED and conn.room is not None:
            conn.room.outdate()  # read your writes: the next visitor reads them
        self.traffic.message(ctx.room_id, ctx.claims, ctx.community, message)

    async def _run(self, conn: HubConnection, ctx: Context, message: wire.Message) -> None:
        """Dispatch an admitted message; refusals become ``error`` answers."""
        try:
            refusal = await routes.dispatch(ctx, message)
            if refusal is not None:
                conn.fail(refusal, message, counted=refusal.code not in routes.OUTCOMES)
                return
            self._accepted(conn, ctx, message)
        except LivecoreError as err:
            conn.fail(err, message, counted=err.code not in routes.OUTCOMES)
            # A handler's frame that holds the error it raised, and the error's traceback
            # that holds the frame, are a cycle only the cyclic collector would free.
            err.__traceback__ = None
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "store error on %s in %s: %s: %s",
                message.type.value,
                ctx.room_id,
                type(exc).__name__,
                exc,
            )
            unavailable = LivecoreError(ErrorCode.STORE_UNAVAILABLE, "store unavailable; retry")
            conn.fail(unavailable, message)
