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

Per-room state here is one pending timer per room whose host stream dropped,
cancelled when the host is back or the room ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import RedisError

from livecore.killswitch import Kill
from livecore.store import control
from signalling.node.context import NodeContext

log = logging.getLogger("livecore.lifecycle")
SWEEP_EVERY_S = 60.0


class RoomLifecycle:
    """Ends rooms (by the host, or after the grace) and sweeps ended rooms' keys."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.grace_s = ctx.settings.end_grace_s
        self.retention_s = ctx.settings.room_retention_s
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(), name="rooms")

    async def stop(self) -> None:
        tasks = [*self._pending.values(), *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

    # -- the host's stream --------------------------------------------------------

    def host_live(self, room: str) -> None:
        """The host publishes (again): the room does not end."""
        task = self._pending.pop(room, None)
        if task is not None:
            task.cancel()

    def host_gone(self, room: str) -> None:
        """The host's stream ended: the room ends after the grace unless it comes back."""
        self.host_live(room)
        self._pending[room] = asyncio.get_running_loop().create_task(
            self._end_after_grace(room), name=f"end-{room}"
        )

    async def _end_after_grace(self, room: str) -> None:
        try:
            await asyncio.sleep(self.grace_s)
            self._pending.pop(room, None)
            if await self._host_on_air(room):
                return  # back within the grace, on this node or another one
            await self.end(room)
        except (RedisError, OSError) as exc:
            log.warning("room %s: could not end after the grace (%r)", room, exc)

    async def _host_on_air(self, room: str) -> bool:
        """Whether the room's host publishes now on any node (a fresh origin): a phone
        that came back through the load balancer may land on another node than the one
        whose grace ran out."""
        stores = self.ctx.stores
        meta = await stores.rooms.get(room)
        if meta is None:
            return False
        origin = await stores.media.origin(room, meta.host)
        return origin is not None and not origin.is_stale(int(self.ctx.clock.time()))

    # -- ending -------------------------------------------------------------------

    async def end(self, room: str) -> int:
        """End ``room`` now (1 ended here, 0 already ended, -1 no such room)."""
        self.host_live(room)
        stores, now = self.ctx.stores, int(self.ctx.clock.time())
        done = await stores.rooms.end(room, now, stores.bus)
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
