"""The dashboard's history: every ``STEP_S`` seconds, one sample of each room's
figures (viewers, likes, votes, group-buy members and items), kept in the
room's capped list (:class:`livecore.store.dash_history.DashboardHistory`).

Each node samples the live rooms it holds connections in (the hub's rooms: a
live room has at least its host console or a viewer there). A short claim in Valkey
makes one node take each step of a room, so several nodes do not sample it
twice. A room that nobody watches is not sampled: there is nothing to chart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from redis.exceptions import RedisError

from livecore.errors import LivecoreError
from livecore.rooms import RoomStatus
from signalling.node.context import NodeContext
from signalling.services.figures import room_figures

log = logging.getLogger("livecore.dashboard")

#: One sample per room every this many seconds (the claim's lifetime).
STEP_S = 5
#: How often the sampler looks (half a step: a step is never skipped twice).
LOOK_S = STEP_S / 2


class DashboardSampler:
    """Samples ``rooms()`` (the ids of the rooms this node holds) every step."""

    def __init__(self, ctx: NodeContext, rooms: Callable[[], Iterable[str]]) -> None:
        self.ctx = ctx
        self.rooms = rooms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="dash-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def sample(self, room: str) -> bool:
        """Take the room's sample of this step while it is live, unless another node
        took it."""
        meta = await self.ctx.rooms.get(room)
        if meta is None or meta.status is not RoomStatus.LIVE:
            return False
        history = self.ctx.stores.history
        if not await history.claim(room, STEP_S):
            return False
        f = await room_figures(self.ctx, room)
        orders = f["orders"]
        sample = [f["at"], f["viewers"], f["likes"], f["votes"], orders["members"], orders["items"]]
        await history.add(room, sample)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(LOOK_S)
            for room in list(self.rooms()):
                try:
                    await self.sample(room)
                except LivecoreError:  # the room went away meanwhile
                    continue
                except (RedisError, OSError) as exc:
                    log.warning("dashboard sample of room %s failed: %s", room, exc)
                except Exception:  # keep sampling the other rooms; the log has the bug
                    log.exception("dashboard sample of room %s failed", room)
