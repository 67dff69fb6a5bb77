"""A room's life: scheduled → live → ended, and its keys leave after a retention time.

- **Live** when its host publishes (:mod:`signalling.services.mediaplane`).
- **Ended** by the host (``POST /api/rooms/{room}/end``) or when the host's
  stream has been gone for ``--end-grace`` seconds (a phone that drops and
  reconnects within it keeps the room live). Ending is one store script
  (status, co-stream requests dropped, ``room_ended`` event, the retention
  index); then every node is told (the control channel) and closes every
  media session of the room: the host's stream stops, so does its recording
  (the replay is built from what was recorded), and a WHIP POST to an ended
  room is refused ``room_ended``; the room's open polls close (their result is final). Open
  group buys run on to their deadline: a neighbour who opens a shared clip of
  an ended room can still join the compound's group.
- **Gone**: ``--room-retention`` seconds after it ended, every key of the room
  is removed (the sweep runs on every node; removing twice is harmless).

Whether a live room ends is decided from Valkey, never from one process's
memory: the room holds a lease (:mod:`livecore.store.leases`) that the node
holding the host's stream renews on every media beat (``hold``); when the
stream ends the lease is set to run out after the grace (``host_gone``).
Every node sweeps lapsed leases every ``LEASE_SWEEP_S``: a room whose lease
lapsed and whose host has no fresh origin on any node ends (once: the end is
one script). So a room whose origin node was killed ends within the grace
plus ``LEASE_MARGIN_S`` plus one sweep of that node's last beat, on whichever
node sweeps first, and a host back on another node within the grace renews
the lease there. This module keeps no per-room state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgpack
from redis.exceptions import RedisError

from livecore.killswitch import Kill
from livecore.rooms import RoomStatus
from livecore.store import control
from signalling.node.context import NodeContext

log = logging.getLogger("livecore.lifecycle")
SWEEP_EVERY_S = 60.0
#: How often every node looks for lapsed leases.
LEASE_SWEEP_S = 1.0
#: A live origin's lease runs this long past its last renewal (plus the grace): longer
#: than the media beat (2 s), so a live origin renews it before it lapses.
LEASE_MARGIN_S = 3.0


class RoomLifecycle:
    """Ends rooms (by the host, or when their lease lapsed) and sweeps ended rooms' keys."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.grace_s = ctx.settings.end_grace_s
        self.retention_s = ctx.settings.room_retention_s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sweep_loop(), name="rooms"),
                       loop.create_task(self._lease_loop(), name="leases")]  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- the host's stream: the room's lease ----------------------------------------------

    async def hold(self, room: str) -> None:
        """The host publishes through this node: renew the lease (every media beat)."""
        now = self.ctx.clock.time()
        await self.ctx.stores.leases.hold(room, now + LEASE_MARGIN_S + self.grace_s)

    async def host_gone(self, room: str) -> None:
        """The host's stream ended here: the room ends after the grace unless it comes
        back (on any node: that node renews the lease)."""
        await self.ctx.stores.leases.hold(room, self.ctx.clock.time() + self.grace_s)

    async def check_leases(self) -> int:
        """End the rooms whose lease lapsed and whose host is not on air (returns how
        many ended here). Safe on every node at once."""
        stores, ended = self.ctx.stores, 0
        for room in await stores.leases.lapsed(self.ctx.clock.time()):
            meta = await stores.rooms.get(room)
            if meta is None or meta.status == RoomStatus.ENDED.value:
                await stores.leases.drop(room)
                continue
            if await self._host_on_air(room):
                continue  # back on another node, whose next beat renews the lease
            await self._origin_lost(room, meta.host)
            if await self.end(room) == 1:
                ended += 1
                log.info("room %s ended: its lease lapsed (host gone past the grace)", room)
        return ended

    async def _host_on_air(self, room: str) -> bool:
        """Whether the room's host publishes now on any node (a fresh origin): a phone
        that came back through the load balancer may land on another node than the one
        whose stream ended."""
        stores = self.ctx.stores
        meta = await stores.rooms.get(room)
        if meta is None:
            return False
        origin = await stores.media.origin(room, meta.host)
        return origin is not None and not origin.is_stale(int(self.ctx.clock.time()))

    async def _origin_lost(self, room: str, host: str) -> None:
        """The host's dead origin, if still registered, is withdrawn (once, by whichever
        node gets there first) and the room told, before it hears the room ended."""
        media = self.ctx.stores.media
        origin = await media.origin(room, host)
        if origin is not None and await media.withdraw(room, host, origin):
            event = {"t": "stream_ended", "user": host, "reason": "origin_lost"}
            await self.ctx.stores.bus.emit(room, msgpack.packb(event))

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SWEEP_S)
            try:
                await self.check_leases()
            except (RedisError, OSError) as exc:
                log.warning("lease sweep failed: %r", exc)

    # -- ending -------------------------------------------------------------------

    async def end(self, room: str) -> int:
        """End ``room`` now (1 ended here, 0 already ended, -1 no such room)."""
        stores, now = self.ctx.stores, int(self.ctx.clock.time())
        done = await stores.rooms.end(room, now, stores.bus)
        await stores.leases.drop(room)
        if done >= 0:  # every node closes the room's media sessions (again: harmless)
            await control.publish(self.ctx.redis, Kill(room=room, ended=True))
        if done == 1:
            for poll in await stores.polls.all(room):
                if poll.status == "open":
                    await stores.polls.close(room, poll.id, now)
            log.info("room %s ended", room)
        return done

    # -- retention ----------------------------------------------------------------

    async def sweep(self) -> int:
        """Remove the keys of rooms that ended more than the retention ago."""
        rooms = self.ctx.stores.rooms
        gone = 0
        for room in await rooms.ended_before(int(self.ctx.clock.time()) - self.retention_s):
            gone += await rooms.forget(room)
            log.info("room %s: keys removed %d s after it ended", room, self.retention_s)
        return gone

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            with contextlib.suppress(RedisError, OSError):
                await self.sweep()
