"""The bus side of the hub: one pub/sub connection, events in order, state coalesced.

A mixin of :class:`signalling.hub.hub.Hub` (it uses the hub's rooms, bus
and metrics): events of a room pass its sequencer (duplicates dropped, gaps
filled from the stream, new epochs noticed); ephemeral state (likes,
tallies, group progress, co-stream ends) is merged by version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from livecore import wire
from livecore.sequencer import Verdict
from livecore.store.bus import channel, parse_channel_message
from signalling.hub.room import MAX_BATCH_EVENTS, LocalRoom

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

    from livecore.store.bus import Bus
    from signalling.metrics import Metrics

log = logging.getLogger("livecore.hub")
#: Events a gap fill may fetch at once.
MAX_FILL = 2000


class BusReader:
    """Reads the rooms' shard channels for the hub."""

    rooms: dict[str, LocalRoom]
    bus: Bus
    metrics: Metrics
    media: Any
    _pubsub: PubSub
    _running: bool
    _confirmed: dict[str, asyncio.Event]

    def _flush(self, room: LocalRoom) -> None:  # provided by the hub
        raise NotImplementedError

    # -- the bus -------------------------------------------------------------------

    async def _listen(self) -> None:
        while self._running:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("bus connection lost (%s); reconnecting", exc)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._on_bus(message)

    def _on_bus(self, message: dict[str, Any]) -> None:
        name = message["channel"].decode() if isinstance(message["channel"], bytes) else ""
        if message["type"] == "ssubscribe":
            event = self._confirmed.pop(name, None)
            if event is not None:
                event.set()
            return
        if message["type"] != "smessage":
            return
        room = self.rooms.get(name.split("{", 1)[-1].split("}", 1)[0])
        if room is None:
            return
        parsed = parse_channel_message(message["data"])
        if isinstance(parsed, tuple):
            self._on_event(room, *parsed)
        elif isinstance(parsed, dict):
            self._on_state(room, parsed)

    def _on_event(self, room: LocalRoom, epoch: str, offset: int, payload: bytes) -> None:
        verdict = room.seq.push(epoch, offset, payload)
        if verdict is Verdict.RESET:
            self._resync(room)
        elif verdict is Verdict.GAP:
            asyncio.get_running_loop().create_task(self._fill(room))
        room.add_events(room.seq.take())
        if len(room.events) >= MAX_BATCH_EVENTS:
            self._flush(room)

    def _on_state(self, room: LocalRoom, state: dict[str, Any]) -> None:
        kind = state.get("k")
        if kind == "likes" and isinstance(state.get("n"), int):
            room.set_likes(state["n"])
        elif kind == "tally" and isinstance(state.get("v"), int):
            room.set_tally(str(state.get("poll")), state["v"], list(state.get("counts", [])))
        elif kind == "media_end" and self.media is not None:
            user = str(state.get("user", ""))
            asyncio.get_running_loop().create_task(self.media.end_user(room.id, user))
        elif kind == "group" and isinstance(state.get("v"), int):
            gb, group = str(state.pop("gb", "")), str(state.pop("g", ""))
            state.pop("k")
            room.set_group(gb, group, state)

    async def _fill(self, room: LocalRoom) -> None:
        """Fetch a gap from the room's history (pub/sub dropped something)."""
        gap = room.seq.gap
        if gap is None:
            return
        self.metrics.bus_gaps.inc()
        try:
            entries = await self.bus.history(room.id, gap[0], gap[1], limit=MAX_FILL)
        except (RedisError, OSError):
            room.seq.gap = None  # housekeeping retries from the head check
            return
        if not room.seq.fill(entries) and (not entries or entries[0][0] != gap[0] + 1):
            self._resync(room)
            return
        room.add_events(room.seq.take())

    def _resync(self, room: LocalRoom) -> None:
        """The room's history was reset: every client must take a fresh snapshot."""
        log.warning("room %s history reset (epoch changed); clients resync", room.id)
        for conn in list(room.conns | room.joining):
            conn.close(wire.CloseCode.RESYNC, "room history reset; reconnect")
        self.rooms.pop(room.id, None)
        self.metrics.rooms.set(len(self.rooms))
        asyncio.get_running_loop().create_task(self._unsubscribe(room.id))

    async def _unsubscribe(self, room_id: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.sunsubscribe(channel(room_id))
